// `forq bench drain|steady|mixed` (docs/benchmarks.md): a workload end to end through forq's
// whole process model, measured from outside it and verified job by job.
//
// The bench process starts the embedded Redis (or uses --redis), enqueues, and forks a child
// that runs `forq serve` (cli::serve, pre-fork workers and all) with one extra handler,
// `forq-bench`. That handler writes into a MAP_SHARED region the bench process mapped before
// forking: a counter per job (so the bench can tell lost from duplicated), the pick-up and run
// histograms, attempts. The bench process reads figures from /proc (the workers' CPU and RSS)
// and from Redis (INFO cpu, INFO commandstats), stops the serve child with SIGTERM, verifies,
// and prints a table or JSON.
#include "bench/bench.hpp"

#include "bench/stats.hpp"
#include "exit_codes.hpp"
#include "forq/client.hpp"
#include "forq/queue/limits.hpp"
#include "forq/redis/connection.hpp"
#include "forq/redis_url.hpp"
#include "master/connect.hpp"
#include "master/embedded_redis.hpp"
#include "master/master.hpp"
#include "queue/consumer.hpp"
#include "redis/cluster.hpp"
#include "utf8.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace forq::bench {

std::optional<proc_sample> read_proc(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; rest >> w;)
    f.push_back(w);
  // After the command: state is field 3; utime 14, stime 15; rss (pages) 24.
  if (f.size() < 22) return std::nullopt;
  double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  proc_sample s;
  s.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / tick;
  s.rss = std::stoull(f[21]) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return s;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t c; in >> c;)
    out.push_back(c);
  return out;
}

// One section of INFO as name -> value.
std::map<std::string, std::string> info_fields(std::string_view text) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string::npos) continue;
    out[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return out;
}

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr const char* bench_handler = "forq-bench";

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
          .count());
}

// What every worker writes and the bench reads: MAP_SHARED, mapped before the fork.
struct shared_state {
  std::atomic<std::uint64_t> completed{0}, attempts{0}, injected_failures{0};
  log_histogram pickup, run;
  std::size_t jobs = 0;
  std::atomic<std::uint8_t>* seen() {
    return reinterpret_cast<std::atomic<std::uint8_t>*>(this + 1);
  }

  static shared_state* create(std::size_t jobs) {
    std::size_t bytes = sizeof(shared_state) + jobs;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    auto* s = new (p) shared_state;
    s->jobs = jobs;
    return s; // zero-filled by mmap: every counter starts at 0
  }
  static void destroy(shared_state* s) {
    std::size_t bytes = sizeof(shared_state) + s->jobs;
    s->~shared_state();
    ::munmap(s, bytes);
  }
};

// The payload: {"seq":N,"t":NS,"fail":0|1,"sleep_us":N,"pad":"..."}. t is when the job should
// be picked up (steady clock, ns): its enqueue time, or when it falls due if delayed.
struct job_spec {
  std::uint64_t seq = 0;
  std::uint64_t due_ns = 0;
  bool fail = false;
  std::uint64_t sleep_us = 0;
  std::size_t payload_bytes = 100;
  std::int64_t delay_ms = 0;
};

std::string payload_of(const job_spec& s) {
  std::string p = "{\"seq\":" + std::to_string(s.seq) + ",\"t\":" + std::to_string(s.due_ns) +
                  ",\"fail\":" + (s.fail ? "1" : "0") +
                  ",\"sleep_us\":" + std::to_string(s.sleep_us) + ",\"pad\":\"";
  auto used = p.size() + 2;
  p.append(s.payload_bytes > used ? s.payload_bytes - used : 0, 'x');
  p += "\"}";
  return p;
}

// The number after "key": in the payload (the bench wrote it: no JSON parser on the hot path).
std::uint64_t field(std::string_view payload, std::string_view key) {
  auto at = payload.find(key);
  if (at == std::string_view::npos) return 0;
  std::uint64_t v = 0;
  auto from = payload.data() + at + key.size();
  std::from_chars(from, payload.data() + payload.size(), v);
  return v;
}

queue::handler make_handler(shared_state* shared) {
  return
      [shared](const queue::delivered_job& j, queue::context&) -> asio::awaitable<queue::outcome> {
        auto start = now_ns();
        std::string_view p = j.payload;
        auto seq = field(p, "\"seq\":");
        auto due = field(p, "\"t\":");
        shared->attempts.fetch_add(1, std::memory_order_relaxed);
        if (j.attempt == 0) shared->pickup.add(start > due ? start - due : 0);
        if (field(p, "\"fail\":") == 1 && j.attempt == 0) {
          shared->injected_failures.fetch_add(1, std::memory_order_relaxed);
          co_return queue::outcome::retry_later("forq bench: an injected failure", 20ms);
        }
        if (auto us = field(p, "\"sleep_us\":"); us > 0) {
          asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::microseconds(us));
          co_await t.async_wait(asio::use_awaitable);
        }
        if (seq < shared->jobs) shared->seen()[seq].fetch_add(1, std::memory_order_relaxed);
        shared->completed.fetch_add(1, std::memory_order_relaxed);
        shared->run.add(now_ns() - start);
        co_return queue::outcome::success();
      };
}

struct redis_sample {
  double cpu_s = 0;
  std::uint64_t commands = 0; // calls of every command but INFO itself
  std::string version;
};

struct run_figures {
  double seconds = 0, jobs_per_s = 0;
  double pickup_us[5]{}; // p50 p90 p99 p99.9 max
  double run_us[5]{};
  double worker_cpu_us_per_job = 0, redis_cpu_us_per_job = 0, redis_cmds_per_job = 0;
  double rss_mb_per_worker = 0, rss_mb_max = 0;
  std::uint64_t enqueued = 0, completed = 0, attempts = 0, injected_failures = 0;
  verdict_counts verdict;
  double offered_rate = 0; // steady/mixed: jobs/s the producer reached
};

constexpr double quantiles[5] = {0.5, 0.9, 0.99, 0.999, 1.0};

class bench_run {
 public:
  bench_run(const config& cfg, const bench_args& a, const std::string& url, unsigned run_no)
      : cfg_(cfg)
      , a_(a)
      , url_(url)
      , queue_("forq-bench-" + std::to_string(::getpid()) + "-" + std::to_string(run_no)) {}

  // Returns the figures, or why the run failed (exit 1).
  std::variant<run_figures, std::string> go() {
    total_ = a_.workload == "drain"
                 ? a_.jobs
                 : static_cast<std::size_t>(std::llround(a_.rate * a_.duration_s));
    if (total_ == 0) return std::string("nothing to run: 0 jobs");
    shared_ = shared_state::create(total_);
    if (!shared_) return std::string("cannot map shared memory for the counters");
    // (with_connection says on stderr why, if it never runs the body)
    std::variant<run_figures, std::string> out = std::string("see the error above");
    master::with_connection(
        cfg_, url_, "bench", [&](redis::connection& conn) -> asio::awaitable<int> {
          out = co_await body(conn);
          stop_serve(); // (blocks this loop for the workers' drain: nothing else runs on it)
          co_await cleanup(conn);
          co_return exit_code::ok;
        });
    stop_serve();
    shared_state::destroy(shared_);
    return out;
  }

  const std::string& redis_version() const { return redis_version_; }

 private:
  asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
  }

  // Redis's CPU and commands so far; a cluster's summed over its primaries.
  asio::awaitable<std::optional<redis_sample>> sample_redis(redis::connection& conn) {
    std::vector<std::string> nodes; // "": the one Redis; else each primary of the cluster
    if (auto* cluster = conn.cluster())
      nodes = cluster->primaries();
    else
      nodes.emplace_back();
    redis_sample s;
    for (const auto& node : nodes) {
      redis::request req("INFO", "cpu");
      req.push("INFO", "commandstats").push("INFO", "server");
      boost::system::result<redis::connection::response> r;
      if (node.empty())
        r = co_await conn.exec(req);
      else
        r = co_await conn.cluster()->exec_on(node, req);
      if (!r || r->size() != 3 || (*r)[0].is_error() || (*r)[1].is_error()) co_return std::nullopt;
      auto c = info_fields((*r)[0].str());
      s.cpu_s += std::stod(c["used_cpu_user"]) + std::stod(c["used_cpu_sys"]);
      for (const auto& [k, v] : info_fields((*r)[1].str())) {
        if (k == "cmdstat_info") continue;
        auto calls = v.find("calls=");
        if (calls != std::string::npos) s.commands += std::stoull(v.substr(calls + 6));
      }
      s.version = info_fields((*r)[2].str())["redis_version"];
    }
    co_return s;
  }

  job_spec spec_for(std::uint64_t seq, std::mt19937_64& rng) {
    job_spec s;
    s.seq = seq;
    s.payload_bytes = a_.payload_bytes;
    if (a_.workload == "mixed") {
      // The mix (docs/benchmarks.md): payloads 70% 100 B, 25% 1 KiB, 5% 10 KiB; 10% of jobs
      // sleep 1 ms in the handler; 5% fail their first attempt (retried after 20 ms); 5% are
      // delayed by 100 to 500 ms.
      auto roll = [&] { return std::uniform_int_distribution<int>(0, 99)(rng); };
      int size = roll();
      s.payload_bytes = size < 70 ? 100 : size < 95 ? 1024 : 10240;
      s.sleep_us = roll() < 10 ? 1000 : 0;
      s.fail = roll() < 5;
      if (roll() < 5) s.delay_ms = std::uniform_int_distribution<int>(100, 500)(rng);
    }
    s.due_ns = now_ns() + static_cast<std::uint64_t>(s.delay_ms) * 1000000u;
    return s;
  }

  queue::new_job job_of(const job_spec& s) {
    queue::new_job j;
    j.handler = bench_handler;
    j.payload = payload_of(s);
    if (s.delay_ms > 0) j.run_at_ms = queue::epoch_ms() + s.delay_ms;
    return j;
  }

  void start_serve() {
    config c = cfg_;
    c.redis_url = url_;
    c.queues = {{queue_, 1, "", {}}};
    c.listen.host = "127.0.0.1";
    c.listen.port = 0;
    queue::handler_map program;
    program.emplace(bench_handler, make_handler(shared_));
    std::fflush(nullptr);
    const pid_t bench_pid = ::getpid();
    serve_pid_ = ::fork();
    if (serve_pid_ == 0) {
      // The serve tree goes with the bench (a killed bench must not leave workers behind,
      // waiting for a Redis that died with it): SIGTERM, so it drains and exits.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != bench_pid) ::_exit(exit_code::failure);
      ::_exit(master::serve(c, nullptr, program));
    }
  }

  void stop_serve() {
    if (serve_pid_ <= 0) return;
    ::kill(serve_pid_, SIGTERM);
    for (int i = 0; i < 3000; ++i) { // 30 s, then SIGKILL
      int status = 0;
      if (::waitpid(serve_pid_, &status, WNOHANG) == serve_pid_) {
        serve_pid_ = -1;
        return;
      }
      ::usleep(10000);
    }
    ::kill(serve_pid_, SIGKILL);
    ::waitpid(serve_pid_, nullptr, 0);
    serve_pid_ = -1;
  }

  // The workers' CPU (and RSS): the serve child's children.
  std::pair<double, std::vector<std::uint64_t>> sample_workers() {
    double cpu = 0;
    std::vector<std::uint64_t> rss;
    for (pid_t w : children_of(serve_pid_))
      if (auto s = read_proc(w)) {
        cpu += s->cpu_s;
        rss.push_back(s->rss);
      }
    return {cpu, rss};
  }

  void progress(std::uint64_t done, clock_type::time_point began) {
    if (a_.json || !::isatty(STDERR_FILENO) || clock_type::now() - began < 2s) return;
    int pct = static_cast<int>(100 * done / total_);
    std::string bar(static_cast<std::size_t>(pct / 4), '#');
    bar.resize(25, '.');
    std::fprintf(stderr, "\r  %s [%s] %3d%%  %llu/%zu jobs", a_.workload.c_str(), bar.c_str(), pct,
                 static_cast<unsigned long long>(done), total_);
    shown_progress_ = true;
  }

  // Waits until every job completed; gives up after 30 s without progress.
  asio::awaitable<bool> wait_for_completion(clock_type::time_point began) {
    std::uint64_t last = 0;
    auto last_change = clock_type::now();
    while (shared_->completed.load() < total_) {
      co_await pause(5ms);
      auto now_done = shared_->completed.load();
      if (now_done != last) {
        last = now_done;
        last_change = clock_type::now();
      } else if (clock_type::now() - last_change > 30s) {
        co_return false;
      }
      if ((progress_tick_++ % 40) == 0) progress(now_done, began);
      int status = 0;
      if (::waitpid(serve_pid_, &status, WNOHANG) == serve_pid_) {
        serve_pid_ = -1;
        co_return false;
      }
    }
    co_return true;
  }

  asio::awaitable<std::variant<run_figures, std::string>> body(redis::connection& conn) {
    client cl(conn);
    std::mt19937_64 rng(42);
    run_figures f;
    f.enqueued = total_;
    if (a_.events) // the queue's events on (docs/job-control.md): what they cost
      if (auto on = co_await cl.set_events(queue_, queue::events_max_default); !on)
        co_return "cannot turn the queue's events on: " + on.error().message();
    std::optional<redis_sample> before;
    clock_type::time_point began;

    if (a_.workload == "drain") {
      // Everything in Redis first (bulk, 1,000 a round trip), then the workers start. Redis's
      // figures cover the jobs' whole life (enqueue too); the clock starts with the workers.
      before = co_await sample_redis(conn);
      std::vector<queue::new_job> batch;
      for (std::uint64_t seq = 0; seq < total_; ++seq) {
        batch.push_back(job_of(spec_for(seq, rng)));
        if (batch.size() == 10000 || seq + 1 == total_) {
          auto r = co_await cl.enqueue_many(queue_, batch);
          if (!r) co_return "enqueue failed: " + r.error().message();
          for (const auto& o : *r)
            if (!o.added) co_return "a job was refused: " + o.refused;
          batch.clear();
        }
      }
      began = clock_type::now();
      start_serve();
      if (serve_pid_ < 0) co_return std::string("fork failed");
      if (!co_await wait_for_completion(began))
        co_return "the drain stalled at " + std::to_string(shared_->completed.load()) + " of " +
            std::to_string(total_) + " jobs (see the serve log above)";
    } else {
      // The workers first, ready (each is waiting in XREADGROUP: Redis creates a group's
      // consumer only when it is served), then the producer at `rate` for `duration`.
      start_serve();
      if (serve_pid_ < 0) co_return std::string("fork failed");
      auto workers = cfg_.effective_workers();
      bool ready = false;
      for (int i = 0; i < 1500 && !ready; ++i) {
        co_await pause(10ms);
        auto clients = co_await conn.command("CLIENT", "LIST");
        if (clients && !clients->is_error()) {
          std::size_t waiting = 0;
          std::string_view text = clients->str();
          for (auto at = text.find("cmd=xreadgroup"); at != std::string_view::npos;
               at = text.find("cmd=xreadgroup", at + 1))
            ++waiting;
          ready = waiting >= workers;
        }
      }
      if (!ready) co_return std::string("the workers did not start within 15 s");
      co_await pause(200ms); // let start-up settle
      before = co_await sample_redis(conn);
      auto [cpu0, rss0] = sample_workers();
      worker_cpu_before_ = cpu0;
      began = clock_type::now();
      std::uint64_t sent = 0;
      asio::steady_timer tick(co_await asio::this_coro::executor);
      auto next = began;
      while (sent < total_) {
        auto elapsed = std::chrono::duration<double>(clock_type::now() - began).count();
        auto due =
            std::min<std::uint64_t>(total_, static_cast<std::uint64_t>(elapsed * a_.rate) + 1);
        std::vector<queue::new_job> batch;
        for (; sent < due; ++sent)
          batch.push_back(job_of(spec_for(sent, rng)));
        if (!batch.empty()) {
          auto r = co_await cl.enqueue_many(queue_, batch);
          if (!r) co_return "enqueue failed: " + r.error().message();
        }
        if ((progress_tick_++ % 200) == 0) progress(shared_->completed.load(), began);
        next += 1ms;
        if (next < clock_type::now()) next = clock_type::now();
        tick.expires_at(next);
        co_await tick.async_wait(asio::use_awaitable);
      }
      f.offered_rate = static_cast<double>(total_) /
                       std::chrono::duration<double>(clock_type::now() - began).count();
      if (!co_await wait_for_completion(began))
        co_return "the run stalled at " + std::to_string(shared_->completed.load()) + " of " +
            std::to_string(total_) + " jobs";
    }
    auto ended = clock_type::now();
    auto after = co_await sample_redis(conn);
    auto [cpu1, rss] = sample_workers();
    if (shown_progress_) std::fprintf(stderr, "\r%70s\r", "");

    f.seconds = std::chrono::duration<double>(ended - began).count();
    f.completed = shared_->completed.load();
    f.attempts = shared_->attempts.load();
    f.injected_failures = shared_->injected_failures.load();
    f.jobs_per_s = static_cast<double>(total_) / f.seconds;
    for (int i = 0; i < 5; ++i) {
      f.pickup_us[i] = static_cast<double>(shared_->pickup.quantile(quantiles[i])) / 1000.0;
      f.run_us[i] = static_cast<double>(shared_->run.quantile(quantiles[i])) / 1000.0;
    }
    auto n = static_cast<double>(total_);
    f.worker_cpu_us_per_job = (cpu1 - worker_cpu_before_) * 1e6 / n;
    if (before && after) {
      f.redis_cpu_us_per_job = (after->cpu_s - before->cpu_s) * 1e6 / n;
      f.redis_cmds_per_job = static_cast<double>(after->commands - before->commands) / n;
      redis_version_ = after->version;
    }
    std::uint64_t rss_sum = 0, rss_max = 0;
    for (auto r : rss) {
      rss_sum += r;
      rss_max = std::max(rss_max, r);
    }
    if (!rss.empty()) f.rss_mb_per_worker = static_cast<double>(rss_sum) / rss.size() / 1048576.0;
    f.rss_mb_max = static_cast<double>(rss_max) / 1048576.0;
    stop_serve();
    // Late duplicates would show after the stop; verify once everything has exited.
    f.verdict = verify(shared_->seen(), total_);
    co_return f;
  }

  // The bench's queue goes: every key under its hash tag, and its registry entry.
  asio::awaitable<void> cleanup(redis::connection& conn) {
    if (!conn.ready()) co_return; // Redis gone: nothing to clean, and no waiting for it
    co_await delete_keys(conn, "forq:{" + queue_ + "}:*");
    co_await conn.command("SREM", "forq:queues", queue_);
  }

  const config& cfg_;
  const bench_args& a_;
  std::string url_;
  std::string queue_;
  std::size_t total_ = 0;
  shared_state* shared_ = nullptr;
  pid_t serve_pid_ = -1;
  double worker_cpu_before_ = 0;
  std::uint64_t progress_tick_ = 0;
  bool shown_progress_ = false;
  std::string redis_version_;
};

// One figure over the runs: name, unit, how to read it from a run.
struct figure {
  std::string key, label;
  std::function<double(const run_figures&)> get;
};

std::vector<figure> figures() {
  std::vector<figure> f;
  f.push_back({"jobs_per_s", "jobs/s", [](const run_figures& r) { return r.jobs_per_s; }});
  const char* names[5] = {"p50", "p90", "p99", "p99_9", "max"};
  const char* labels[5] = {"p50", "p90", "p99", "p99.9", "max"};
  for (int i = 0; i < 5; ++i)
    f.push_back({std::string("pickup_us_") + names[i],
                 std::string("pick-up ") + labels[i] + " (µs)",
                 [i](const run_figures& r) { return r.pickup_us[i]; }});
  for (int i = 0; i < 5; ++i)
    f.push_back({std::string("run_us_") + names[i], std::string("run ") + labels[i] + " (µs)",
                 [i](const run_figures& r) { return r.run_us[i]; }});
  f.push_back({"worker_cpu_us_per_job", "worker CPU µs/job",
               [](const run_figures& r) { return r.worker_cpu_us_per_job; }});
  f.push_back({"redis_cpu_us_per_job", "redis-server CPU µs/job",
               [](const run_figures& r) { return r.redis_cpu_us_per_job; }});
  f.push_back({"redis_cmds_per_job", "Redis commands/job",
               [](const run_figures& r) { return r.redis_cmds_per_job; }});
  f.push_back({"rss_mb_per_worker", "RSS per worker (MiB)",
               [](const run_figures& r) { return r.rss_mb_per_worker; }});
  return f;
}

std::string number(double v) {
  char buf[64];
  if (v >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (v >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

} // namespace

std::variant<std::unique_ptr<bench_redis>, int> bench_redis::open(const std::string& url) {
  auto r = std::unique_ptr<bench_redis>(new bench_redis());
  r->url_ = url;
  if (!url.empty()) return r;
  char dir[] = "/tmp/forq-bench-XXXXXX";
  if (!::mkdtemp(dir)) {
    std::fprintf(stderr, "forq: cannot make a directory for the bench's Redis\n");
    return exit_code::failure;
  }
  r->dir_ = dir;
  auto started = embedded_redis::start({.data_dir = dir, .aof = aof_policy::off});
  if (!started) {
    std::fprintf(stderr, "forq: %s\n", started.error().message().c_str());
    return exit_code::fatal;
  }
  r->server_ = std::move(*started);
  r->url_ = r->server_->url();
  return r;
}

bench_redis::~bench_redis() {
  server_.reset(); // stops it
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

asio::awaitable<void> delete_keys(redis::connection& conn, std::string pattern) {
  if (!conn.ready()) co_return; // Redis gone: nothing to clean, and no waiting for it
  std::string cursor = "0";
  redis::exec_options o; // cluster: the node that holds the pattern's hash tag
  o.route = pattern;
  do {
    const redis::request scan("SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
    auto r = redis::connection::single(co_await conn.exec(scan, o));
    if (!r || !r->is_array() || r->elements().size() != 2) co_return;
    cursor = std::string(r->elements()[0].str());
    for (const auto& k : r->elements()[1].elements())
      co_await conn.command("UNLINK", k.str());
  } while (cursor != "0");
}

namespace {

// The report as one JSON object on stdout.
void report_json(const config& cfg, const bench_args& a, const std::vector<run_figures>& runs,
                 const std::string& version, bool all_ok) {
  const auto& first = runs.front();
  json::object o;
  o["workload"] = a.workload;
  o["jobs"] = first.enqueued;
  if (a.workload != "drain") {
    o["rate"] = a.rate;
    o["duration_s"] = a.duration_s;
  }
  o["payload_bytes"] = a.payload_bytes;
  o["workers"] = cfg.effective_workers();
  o["concurrency"] = cfg.concurrency;
  o["redis"] = cfg.redis_url.empty() ? "embedded" : redact_url(cfg.redis_url);
  o["redis_version"] = version;
  o["verified"] = all_ok;
  json::array list;
  for (const auto& r : runs) {
    json::object one;
    for (const auto& f : figures())
      one[f.key] = f.get(r);
    one["seconds"] = r.seconds;
    one["completed"] = r.completed;
    one["attempts"] = r.attempts;
    one["injected_failures"] = r.injected_failures;
    one["lost"] = r.verdict.lost;
    one["duplicated"] = r.verdict.duplicated;
    if (a.workload != "drain") one["offered_jobs_per_s"] = r.offered_rate;
    list.push_back(one);
  }
  o["runs"] = list;
  json::object med;
  for (const auto& f : figures()) {
    std::vector<double> v;
    for (const auto& r : runs)
      v.push_back(f.get(r));
    auto s = spread::of(v);
    med[f.key] = json::object{{"median", s.median}, {"min", s.min}, {"max", s.max}};
  }
  o["summary"] = med;
  std::printf("%s\n", serialize_utf8(o).c_str());
}

// The report as a table: the median (min, max) of each figure, then each run's verification.
void report_table(const config& cfg, const bench_args& a, const std::vector<run_figures>& runs,
                  const std::string& version) {
  const auto& first = runs.front();
  std::string workload_line = a.workload == "drain"
                                  ? std::to_string(a.jobs) + " jobs enqueued first, then drained"
                                  : std::to_string(first.enqueued) + " jobs at " + number(a.rate) +
                                        " jobs/s for " + number(a.duration_s) + " s";
  std::printf("forq bench %s: %s\n", a.workload.c_str(), workload_line.c_str());
  std::printf("  %u workers x concurrency %u, payload %zu B%s, Redis %s (%s)\n",
              cfg.effective_workers(), cfg.concurrency, a.payload_bytes,
              a.workload == "mixed" ? " (mixed sizes)" : "", version.c_str(),
              cfg.redis_url.empty() ? "embedded, no persistence"
                                    : redact_url(cfg.redis_url).c_str());
  bool many = runs.size() > 1;
  std::printf("\n");
  if (many)
    std::printf("  %-26s %12s %12s %12s   (%zu runs)\n", "", "median", "min", "max", runs.size());
  for (const auto& f : figures()) {
    std::vector<double> v;
    for (const auto& r : runs)
      v.push_back(f.get(r));
    auto s = spread::of(v);
    // (The labels hold 'µ', two bytes: pad by what the terminal shows.)
    auto shown = f.label.size() - (f.label.find("µ") != std::string::npos ? 1 : 0);
    std::printf("  %s%*s %12s", f.label.c_str(),
                static_cast<int>(26 - std::min<std::size_t>(26, shown)), "",
                number(s.median).c_str());
    if (many) std::printf(" %12s %12s", number(s.min).c_str(), number(s.max).c_str());
    std::printf("\n");
  }
  std::printf("\n");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    std::printf("  run %zu: %s: %llu enqueued, %llu completed once, %llu lost, %llu "
                "duplicated; %llu attempts (%llu injected failures retried)\n",
                i + 1, r.verdict.ok() ? "verified" : "FAILED VERIFICATION",
                static_cast<unsigned long long>(r.enqueued),
                static_cast<unsigned long long>(r.verdict.completed_once),
                static_cast<unsigned long long>(r.verdict.lost),
                static_cast<unsigned long long>(r.verdict.duplicated),
                static_cast<unsigned long long>(r.attempts),
                static_cast<unsigned long long>(r.injected_failures));
  }
}

} // namespace

int bench(const config& cfg, const bench_args& a) {
  std::signal(SIGPIPE, SIG_IGN);
  auto opened = bench_redis::open(cfg.redis_url);
  if (auto* code = std::get_if<int>(&opened)) return *code;
  auto redis = std::move(std::get<std::unique_ptr<bench_redis>>(opened));
  const std::string& url = redis->url();

  std::vector<run_figures> runs;
  std::string version;
  for (unsigned r = 1; r <= a.repeat; ++r) {
    bench_run run(cfg, a, url, r);
    auto out = run.go();
    if (auto* why = std::get_if<std::string>(&out)) {
      std::fprintf(stderr, "forq bench: run %u failed: %s\n", r, why->c_str());
      return exit_code::failure;
    }
    runs.push_back(std::get<run_figures>(out));
    version = run.redis_version();
    if (!a.json && a.repeat > 1)
      std::fprintf(stderr, "  run %u of %u: %s jobs/s\n", r, a.repeat,
                   number(runs.back().jobs_per_s).c_str());
  }
  redis.reset(); // a private Redis is stopped and removed before the report

  bool all_ok = true;
  for (const auto& r : runs)
    all_ok = all_ok && r.verdict.ok();
  if (a.json)
    report_json(cfg, a, runs, version, all_ok);
  else
    report_table(cfg, a, runs, version);
  if (!all_ok) {
    std::fprintf(stderr, "forq bench: a run lost or duplicated jobs (see above)\n");
    return exit_code::failure;
  }
  return exit_code::ok;
}

} // namespace forq::bench
