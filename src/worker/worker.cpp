// One worker process of `forq serve` (the child side of the pre-fork model, docs/signals.md):
// its own single-threaded io_context, Redis pool and one consumer per configured queue, until
// the master (or its own death signal) tells it to stop.
#include "worker/worker.hpp"

#include "backoff.hpp"
#include "exit_codes.hpp"
#include "forq/handlers.hpp"
#include "forq/redis_url.hpp"
#include "http/http.hpp"
#include "log.hpp"
#include "process/process_title.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "redis/pool.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <unistd.h>

namespace forq::worker {

using process::shared_metrics;
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> pause_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Worker 1 looks once at start: a Redis whose maxmemory-policy may evict keys deletes queued
// jobs silently when memory runs out. A warning, or with redis.strict a fatal error (exit 2).
asio::awaitable<void> check_eviction(redis::connection& conn, const config& cfg,
                                     std::function<void(int)> on_fatal) {
  auto r = co_await conn.command("INFO", "memory");
  std::string policy;
  if (r && !r->is_error()) {
    std::string_view info = r->str();
    auto at = info.find("maxmemory_policy:");
    if (at != std::string_view::npos) {
      info.remove_prefix(at + 17);
      policy = info.substr(0, info.find_first_of("\r\n"));
    }
  }
  if (policy.empty()) {
    spdlog::info("cannot read Redis's maxmemory-policy ({}); make sure it is noeviction",
                 r ? (r->is_error() ? std::string(r->str()) : "not in INFO memory")
                   : r.error().message());
    co_return;
  }
  if (policy == "noeviction") co_return;
  if (cfg.redis_strict) {
    spdlog::critical("Redis's maxmemory-policy is {}: when memory runs out it deletes keys, "
                     "queued jobs among them, without a word; --redis-strict refuses such a "
                     "Redis: set maxmemory-policy noeviction (CONFIG SET and redis.conf)",
                     policy);
    on_fatal(exit_code::fatal);
    co_return;
  }
  spdlog::warn("Redis's maxmemory-policy is {}: when memory runs out it deletes keys, queued jobs "
               "among them, without a word; set maxmemory-policy noeviction (CONFIG SET and "
               "redis.conf), or run with --redis-strict to refuse such a Redis",
               policy);
}

} // namespace

namespace {

// The `schedules` setting made true in Redis by every worker as it starts (so at start and
// after SIGHUP, which replaces the workers), tried again until it is. Idempotent: the first
// worker to change something logs it; the others find nothing to do.
asio::awaitable<void> reconcile_schedules(redis::connection& conn, const config& cfg) {
  auto defs = schedule::from_json_list(cfg.schedules_json);
  if (!defs) { // checked when the setting was read
    spdlog::error("schedules: {}", defs.error().message());
    co_return;
  }
  std::vector<std::string> queues;
  for (const auto& q : cfg.queues)
    queues.push_back(q.name);
  backoff wait(backoff_policy{std::chrono::seconds(1), std::chrono::seconds(30), true, true},
               static_cast<std::uint64_t>(::getpid()));
  for (;;) {
    auto ok = co_await schedule::reconcile(conn, *defs, queues);
    if (ok) co_return;
    if (ok.error() == errc::redis_shutdown) co_return;
    const auto w = wait.next();
    spdlog::warn("schedules: the schedules setting is not in Redis yet ({}); trying again in {} ms",
                 ok.error().message(), w.count());
    asio::steady_timer t(co_await asio::this_coro::executor, w);
    co_await t.async_wait(asio::use_awaitable);
  }
}

// One worker process's life. Built in order (loop, signals, Redis pool and consumers, HTTP, the
// metrics publisher), it runs until a stop signal or a fatal error and then stops along one
// path: running -> draining -> stopped, or -> quitting at once (SIGQUIT, at any time).
class worker_life {
 public:
  worker_life(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
              shared_metrics* metrics, const queue::handler_map& program)
      : cfg_(cfg)
      , slot_(slot)
      , metrics_(metrics)
      , signals_(ioc_, SIGTERM, SIGINT, SIGQUIT)
      , work_(ioc_.get_executor(), cfg, url, program, metrics) {
    // The master forked this process with them blocked (serve.cpp); now they have a listener.
    sigset_t stops;
    sigemptyset(&stops);
    for (int sig : {SIGTERM, SIGINT, SIGQUIT})
      sigaddset(&stops, sig);
    ::sigprocmask(SIG_UNBLOCK, &stops, nullptr);
    work_.start([this](int code) { fail(code); });
    if (slot == 1)
      asio::co_spawn(ioc_, check_eviction(work_.commands(), cfg, [this](int c) { fail(c); }),
                     asio::detached);
    if (!cfg.schedules_json.empty())
      asio::co_spawn(ioc_, reconcile_schedules(work_.commands(), cfg), asio::detached);
    // The HTTP surface on the master's listener, and this worker's share of /metrics.
    web_.cfg = &cfg;
    web_.metrics = metrics;
    web_.conn = &work_.commands();
    web_.redis_deadline = std::min<std::chrono::milliseconds>(cfg.redis_timeout, 10s);
    web_.not_ready = [this] { return draining_ ? std::string("draining") : work_.not_ready(); };
    for (const auto& [name, h] : worker_handlers(cfg, program))
      web_.handlers.push_back(name);
    if (listener_fd >= 0) asio::co_spawn(ioc_, http::serve_http(web_, listener_fd), asio::detached);
    if (metrics) asio::co_spawn(ioc_, publish_loop(), asio::detached);
    asio::co_spawn(ioc_, presence_loop(), asio::detached);
    asio::co_spawn(ioc_, minutes_loop(), asio::detached);
  }

  int run() {
    asio::co_spawn(ioc_, life(), [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("worker {}: {}", slot_, ex.what());
      }
      code_ = exit_code::failure;
      ioc_.stop();
    });
    ioc_.run();
    spdlog::default_logger()->flush();
    return code_;
  }

 private:
  // A consumer cannot go on: stop with its code.
  void fail(int code) {
    if (!fatal_) fatal_ = code;
    signals_.cancel();
  }

  // The signal (or the fatal error, as 0) that ends running.
  asio::awaitable<int> stop_reason() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (fatal_) co_return 0;
      if (!ec) co_return sig;
    }
  }

  asio::awaitable<void> life() {
    const int sig = co_await stop_reason();
    stop_http();
    if (fatal_) {
      code_ = fatal_;
      co_await work_.drain(false);
      ioc_.stop();
      co_return;
    }
    if (sig == SIGQUIT) quit_now("SIGQUIT"); // fast stop: leases bring the running jobs back
    asio::co_spawn(ioc_, drain_watchdog(), asio::detached);
    asio::co_spawn(ioc_, quit_while_draining(), asio::detached);
    spdlog::info("worker {} draining (SIG{})", slot_, sigabbrev_np(sig));
    process::set_process_title("forq: worker " + std::to_string(slot_) + " [draining]");
    co_await work_.drain(true);
    if (metrics_) work_.publish(my_slot());
    spdlog::info("worker {} stopped; {} done", slot_, counted(work_.done(), "job"));
    ioc_.stop(); // the watchdog and the SIGQUIT listener are still waiting
  }

  void stop_http() {
    draining_ = true;
    beat_.cancel(); // say so at once
    web_.stopping = true;
    if (web_.feed) web_.feed->close(); // waits answer now, with the job as it stands
    if (web_.acceptor) {
      boost::system::error_code ignored;
      web_.acceptor->close(ignored);
    }
  }

  [[noreturn]] void quit_now(const char* why) {
    spdlog::info("worker {} stopping now ({}); {} done", slot_, why, counted(work_.done(), "job"));
    spdlog::default_logger()->flush();
    ::_exit(exit_code::ok);
  }

  // While draining, SIGQUIT (the master's second SIGINT) still means: now.
  asio::awaitable<void> quit_while_draining() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (!ec && sig == SIGQUIT) quit_now("SIGQUIT while draining");
    }
  }

  // A drain that cannot reach Redis (it died with the master, say) must still end: the jobs
  // this worker holds come back through their leases.
  asio::awaitable<void> drain_watchdog() {
    auto give_up = std::chrono::steady_clock::now() + cfg_.drain_timeout + 5s;
    auto away = 0ms;
    while (std::chrono::steady_clock::now() < give_up && away < 3s) {
      co_await pause_for(100ms);
      away = work_.redis_ready() ? 0ms : away + 100ms;
    }
    spdlog::error("worker {}: {}; exiting, leases bring its jobs back", slot_,
                  away >= 3s ? "Redis has been unreachable for 3 s while draining"
                             : "the drain did not finish within drain_timeout + 5 s");
    spdlog::default_logger()->flush();
    ::_exit(exit_code::failure);
  }

  asio::awaitable<void> publish_loop() {
    for (;;) {
      co_await pause_for(100ms);
      work_.publish(my_slot());
    }
  }

  // This process's presence in Redis, for GET /v1/workers and the dashboard's Workers page
  // (docs/protocol.md, "Workers"): every 10 s (and when it starts draining) a description that
  // expires after 30 s, and its name in forq:workers, trimmed of names silent for a minute. A
  // beat Redis does not take within 5 s is dropped: the next one says the same, newer.
  asio::awaitable<void> presence_loop() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string name = std::string(host) + ":" + std::to_string(::getpid());
    const auto started = queue::epoch_ms();
    // A worker that stops cleanly leaves the page at once (a killed one, when its description
    // expires).
    work_.farewell.push("DEL", queue::keys::worker(name));
    work_.farewell.push("ZREM", queue::keys::workers, name);
    std::int64_t trimmed = 0;
    beat_.expires_after(1s); // the first once its connections had a moment to come up
    co_await beat_.async_wait(asio::as_tuple(asio::use_awaitable));
    for (;;) {
      if (work_.said_farewell) co_return; // a beat now would outlive the process
      const auto now = queue::epoch_ms();
      boost::json::object o;
      o["name"] = name;
      o["host"] = host;
      o["pid"] = ::getpid();
      o["slot"] = slot_;
      o["version"] = FORQ_VERSION;
      o["started_ms"] = started;
      o["beat_ms"] = now;
      o["state"] = draining_ ? "draining" : "running";
      o["redis"] = work_.fetching_ready() ? "connected"
                   : work_.redis_ready()  ? "fetches reconnecting"
                                          : "reconnecting";
      o["concurrency"] = cfg_.concurrency;
      o["queues"] = work_.describe_queues();
      redis::request req;
      req.push("SET", queue::keys::worker(name), serialize_utf8(o), "PX", "30000");
      req.push("ZADD", queue::keys::workers, std::to_string(now), name);
      if (now - trimmed >= 60000) {
        req.push("ZREMRANGEBYSCORE", queue::keys::workers, "-inf", std::to_string(now - 60000));
        trimmed = now;
      }
      redis::exec_options opts;
      opts.deadline = std::chrono::steady_clock::now() + 5s;
      auto r = co_await work_.commands().exec(req, opts);
      if (!r && r.error() == errc::redis_shutdown) co_return; // drained: the pool is closed
      beat_.expires_after(draining_ ? 30s : 10s);
      co_await beat_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  // Every 10 s, what the consumers did meanwhile to their queues' figures by the minute (the
  // dashboard's throughput and pick-up latency history).
  asio::awaitable<void> minutes_loop() {
    for (;;) {
      co_await pause_for(10s);
      if (draining_) co_return; // drain() adds the last of it
      co_await work_.flush_minutes(std::chrono::steady_clock::now() + 5s);
    }
  }

  process::slot_counters& my_slot() {
    return metrics_->slots[(slot_ - 1) % shared_metrics::max_slots];
  }

  const config& cfg_;
  unsigned slot_;
  shared_metrics* metrics_;
  asio::io_context ioc_{1};
  asio::signal_set signals_;
  consumers work_;
  http::http_context web_;
  asio::steady_timer beat_{ioc_}; // the presence loop's wait
  int code_ = exit_code::ok;
  int fatal_ = 0;
  bool draining_ = false;
};

} // namespace

int run_worker(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
               process::shared_metrics* metrics, const queue::handler_map& program) {
  worker_life life(cfg, url, slot, listener_fd, metrics, program);
  return life.run();
}

} // namespace forq::worker
