// `forq bench idle` (docs/benchmarks.md, "Idle"): N queues with nothing to do, consumed by one or
// several serve trees (as on that many hosts), and what they cost: Redis commands per second
// (in all, per queue per host, by command), Redis's CPU and the workers' CPU.
#include "bench/bench.hpp"
#include "exit_codes.hpp"
#include "forq/redis/connection.hpp"
#include "master/connect.hpp"
#include "master/master.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace forq::bench {

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct redis_counts {
  double cpu_s = 0;
  std::map<std::string, std::uint64_t> calls; // command -> calls (INFO's own left out)
};

asio::awaitable<std::optional<redis_counts>> sample(redis::connection& conn) {
  auto cpu = co_await conn.command("INFO", "cpu");
  auto stats = co_await conn.command("INFO", "commandstats");
  if (!cpu || !stats || cpu->is_error() || stats->is_error()) co_return std::nullopt;
  redis_counts s;
  auto c = info_fields(cpu->str());
  s.cpu_s = std::stod(c["used_cpu_user"]) + std::stod(c["used_cpu_sys"]);
  for (const auto& [k, v] : info_fields(stats->str())) {
    auto calls = v.find("calls=");
    if (k.rfind("cmdstat_", 0) != 0 || k == "cmdstat_info" || calls == std::string::npos) continue;
    s.calls[k.substr(8)] = std::stoull(v.substr(calls + 6));
  }
  co_return s;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

double workers_cpu(const std::vector<pid_t>& serves) {
  double cpu = 0;
  for (pid_t s : serves)
    for (pid_t w : children_of(s))
      if (auto p = read_proc(w)) cpu += p->cpu_s;
  return cpu;
}

class idle_run {
 public:
  idle_run(const config& cfg, const idle_args& a, std::string url)
      : cfg_(cfg)
      , a_(a)
      , url_(std::move(url))
      , prefix_("forq-idle-" + std::to_string(::getpid()) + "-") {}
  ~idle_run() { stop(); }

  int go() {
    int code = exit_code::failure;
    master::with_connection(cfg_, url_, "bench",
                            [&](redis::connection& conn) -> asio::awaitable<int> {
                              code = co_await body(conn);
                              stop();
                              co_await cleanup(conn);
                              co_return exit_code::ok;
                            });
    return code;
  }

 private:
  asio::awaitable<int> body(redis::connection& conn) {
    config c = cfg_;
    c.redis_url = url_;
    c.queues.clear();
    for (std::size_t i = 0; i < a_.queues; ++i)
      c.queues.push_back({prefix_ + std::to_string(i), 1, "", {}});
    c.listen.host = "127.0.0.1";
    c.listen.port = 0;
    const auto workers = c.effective_workers();
    std::fflush(nullptr);
    for (unsigned h = 0; h < a_.hosts; ++h) {
      const pid_t bench_pid = ::getpid();
      pid_t pid = ::fork();
      if (pid < 0) {
        std::fprintf(stderr, "forq bench: cannot fork a serve tree\n");
        co_return exit_code::failure;
      }
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != bench_pid) ::_exit(exit_code::failure);
        ::_exit(master::serve(c, nullptr, {}));
      }
      serves_.push_back(pid);
    }
    // Ready: every consumer waits in XREADGROUP (one blocked client per worker per queue).
    const std::size_t expected = a_.hosts * workers * a_.queues;
    bool ready = false;
    for (int i = 0; i < 1200 && !ready; ++i) {
      co_await pause(50ms);
      auto r = co_await conn.command("INFO", "clients");
      if (r && !r->is_error())
        ready = std::stoull(info_fields(r->str())["blocked_clients"]) >= expected;
    }
    if (!ready) {
      std::fprintf(stderr, "forq bench: the workers were not all waiting for jobs within 60 s\n");
      co_return exit_code::failure;
    }
    co_await pause(2s); // each keeper's first look at everything is start-up, not idling
    auto before = co_await sample(conn);
    auto cpu0 = workers_cpu(serves_);
    auto t0 = std::chrono::steady_clock::now();
    co_await pause(std::chrono::milliseconds(static_cast<long>(a_.duration_s * 1000)));
    auto after = co_await sample(conn);
    auto cpu1 = workers_cpu(serves_);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!before || !after) {
      std::fprintf(stderr, "forq bench: cannot read Redis's INFO\n");
      co_return exit_code::failure;
    }
    std::vector<std::pair<double, std::string>> by_command; // per second
    double total = 0;
    for (const auto& [name, n] : after->calls) {
      auto was = before->calls.count(name) ? before->calls.at(name) : 0;
      double rate = static_cast<double>(n - was) / secs;
      if (rate <= 0) continue;
      total += rate;
      by_command.emplace_back(rate, name);
    }
    std::sort(by_command.rbegin(), by_command.rend());
    double per_queue_host = total / static_cast<double>(a_.queues * a_.hosts);
    double redis_pct = (after->cpu_s - before->cpu_s) / secs * 100;
    double workers_pct = (cpu1 - cpu0) / secs * 100;
    if (a_.json) {
      boost::json::object o;
      o["workload"] = "idle";
      o["queues"] = a_.queues;
      o["hosts"] = a_.hosts;
      o["workers_per_host"] = workers;
      o["seconds"] = secs;
      o["redis_commands_per_s"] = total;
      o["redis_commands_per_s_per_queue_per_host"] = per_queue_host;
      o["redis_cpu_percent"] = redis_pct;
      o["workers_cpu_percent"] = workers_pct;
      boost::json::object cmds;
      for (const auto& [rate, name] : by_command)
        cmds[name] = rate;
      o["by_command_per_s"] = std::move(cmds);
      std::printf("%s\n", boost::json::serialize(o).c_str());
    } else {
      std::printf("forq bench idle: %zu queue%s, %u serve tree%s x %u worker%s, %.1f s\n",
                  a_.queues, a_.queues == 1 ? "" : "s", a_.hosts, a_.hosts == 1 ? "" : "s", workers,
                  workers == 1 ? "" : "s", secs);
      std::printf("  Redis commands/s            %10.1f\n", total);
      std::printf("  per queue per host          %10.2f\n", per_queue_host);
      std::printf("  Redis CPU (%% of a core)     %10.2f  (Redis's own timers included)\n",
                  redis_pct);
      std::printf("  workers' CPU (%% of a core)  %10.2f\n", workers_pct);
      std::printf("  by command (/s):");
      for (const auto& [rate, name] : by_command)
        std::printf(" %s %.1f", name.c_str(), rate);
      std::printf("\n");
    }
    co_return exit_code::ok;
  }

  void stop() {
    for (pid_t pid : serves_)
      ::kill(pid, SIGTERM);
    for (pid_t pid : serves_)
      ::waitpid(pid, nullptr, 0);
    serves_.clear();
  }

  // Every key of the bench's queues, and their registry entries.
  asio::awaitable<void> cleanup(redis::connection& conn) {
    if (!conn.ready()) co_return;
    co_await delete_keys(conn, "forq:{" + prefix_ + "*");
    for (std::size_t i = 0; i < a_.queues; ++i)
      co_await conn.command("SREM", "forq:queues", prefix_ + std::to_string(i));
  }

  const config& cfg_;
  const idle_args& a_;
  std::string url_;
  std::string prefix_;
  std::vector<pid_t> serves_;
};

} // namespace

int idle(const config& cfg, const idle_args& a) {
  std::signal(SIGPIPE, SIG_IGN);
  auto opened = bench_redis::open(cfg.redis_url);
  if (auto* code = std::get_if<int>(&opened)) return *code;
  return idle_run(cfg, a, std::get<std::unique_ptr<bench_redis>>(opened)->url()).go();
}

} // namespace forq::bench
