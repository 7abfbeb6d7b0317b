// `forq serve`. Today one process: it brings up the embedded Redis (or takes the configured
// one), consumes the configured queues with the built-in handlers until SIGINT or SIGTERM, then
// lets the jobs in flight finish (up to drain_timeout) and stops. The pre-fork process model
// and the HTTP surface (issue 5) and the exec/HTTP handlers (issue 6) grow this file.
#include "commands.hpp"
#include "forq/embedded_redis.hpp"
#include "forq/exit_codes.hpp"
#include "forq/queue/consumer.hpp"
#include "forq/redis/pool.hpp"
#include "forq/redis_url.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <csignal>

namespace forq::cli {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Keeps the embedded Redis alive while the service runs: a redis-server that dies is started
// again on the same AOF, with a pause that doubles up to 30 s while it keeps dying.
class redis_keeper {
 public:
  explicit redis_keeper(embedded_redis& redis)
      : redis_(redis) {}

  // Called on SIGCHLD. Returns false when the Redis cannot be brought back.
  asio::awaitable<bool> on_child_exit() {
    auto how = redis_.poll_exit();
    if (!how) co_return true;
    // A Redis that ran a good while before dying starts again quickly; one that keeps dying
    // waits longer each time, up to 30 s.
    auto now = std::chrono::steady_clock::now();
    if (now - last_restart_ > 60s) backoff_ = 250ms;
    last_restart_ = now;
    auto pause = backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30s));
    spdlog::error("embedded redis-server exited ({}); restarting it in {} ms", *how, pause.count());
    asio::steady_timer timer(co_await asio::this_coro::executor, pause);
    co_await timer.async_wait(asio::use_awaitable);
    if (auto err = redis_.restart()) {
      spdlog::critical("cannot restart the embedded redis-server: {}", err->message);
      co_return false;
    }
    co_return true;
  }

 private:
  embedded_redis& redis_;
  std::chrono::milliseconds backoff_{250ms};
  std::chrono::steady_clock::time_point last_restart_{};
};

// The handlers every forq has: `noop` succeeds with no result, `echo` returns its payload.
// Others come with issue 6 (exec, HTTP); a job naming one that does not exist goes to the dead
// set with the reason, and the queue moves on.
queue::handler_map builtin_handlers() {
  queue::handler_map h;
  h.emplace("noop", [](const queue::delivered_job&) -> asio::awaitable<queue::outcome> {
    co_return queue::outcome::success();
  });
  h.emplace("echo", [](const queue::delivered_job& j) -> asio::awaitable<queue::outcome> {
    co_return queue::outcome::success(j.payload);
  });
  return h;
}

// The consumers of every configured queue on one pool, started and stopped together.
class workers {
 public:
  workers(asio::any_io_executor ex, const config& cfg, const std::string& url)
      : cfg_(cfg) {
    redis::pool_options po;
    po.connection.endpoint = std::get<redis_endpoint>(parse_redis_url(url));
    po.blocking_connections = cfg.queues.size();
    po.role = "worker";
    pool_ = std::make_unique<redis::pool>(ex, po);
    // One queue has every slot; several share them by weight.
    auto share = cfg.queues.size() > 1 ? std::make_shared<queue::slot_share>(cfg.concurrency)
                                       : nullptr;
    for (std::size_t i = 0; i < cfg.queues.size(); ++i) {
      queue::consumer_options o;
      o.queue = cfg.queues[i].name;
      o.concurrency = cfg.concurrency;
      o.share = share;
      o.weight = cfg.queues[i].weight;
      o.blocking_connection = i;
      consumers_.push_back(std::make_unique<queue::consumer>(*pool_, o, builtin_handlers()));
    }
  }

  void start(std::function<void(int)> on_fatal) {
    auto ex = pool_->commands().executor();
    asio::co_spawn(ex, pool_->run(), [this](std::exception_ptr) { pool_done_ = true; });
    for (std::size_t i = 0; i < consumers_.size(); ++i)
      asio::co_spawn(ex, consumers_[i]->run(),
                     [this, i, on_fatal](std::exception_ptr e, boost::system::error_code ec) {
                       ++finished_;
                       if (e || ec) {
                         spdlog::critical("consuming queue {} failed: {}", cfg_.queues[i].name,
                                          e ? "an exception" : ec.message());
                         // A schema or a key Redis refuses: restarting cannot help.
                         on_fatal(ec == errc::queue_schema_mismatch || ec == errc::redis_refused
                                      ? exit_code::fatal
                                      : exit_code::failure);
                       }
                     });
    std::string names;
    for (const auto& q : cfg_.queues)
      names += (names.empty() ? "" : ", ") + q.name +
               (cfg_.queues.size() > 1 ? " (weight " + std::to_string(q.weight) + ")" : "");
    spdlog::info("consuming {} queue{}: {}; {} jobs at once", consumers_.size(),
                 consumers_.size() == 1 ? "" : "s", names, cfg_.concurrency);
  }

  // Stop fetching, let the jobs in flight finish for up to drain_timeout, then close Redis.
  // Jobs still running then stay pending in Redis and come back through stall recovery.
  asio::awaitable<void> stop() {
    for (auto& c : consumers_)
      c->stop();
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto deadline = std::chrono::steady_clock::now() + cfg_.drain_timeout;
    while (finished_ < consumers_.size() && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    if (finished_ < consumers_.size())
      spdlog::warn("drain timeout ({} ms) passed with jobs still running; they return to their "
                   "queue after their lease",
                   cfg_.drain_timeout.count());
    pool_->stop();
    while (!pool_done_ || finished_ < consumers_.size()) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  }

 private:
  const config& cfg_;
  std::unique_ptr<redis::pool> pool_;
  std::vector<std::unique_ptr<queue::consumer>> consumers_;
  std::size_t finished_ = 0;
  bool pool_done_ = false;
};

asio::awaitable<int> supervise(asio::signal_set& signals, embedded_redis* redis, workers& w,
                               int& fatal) {
  std::optional<redis_keeper> keeper;
  if (redis) keeper.emplace(*redis);
  int code = exit_code::ok;
  while (true) {
    if (fatal) {
      code = fatal;
      break;
    }
    auto [ec, sig] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
    if (fatal) { // a consumer cannot go on (signals.cancel() woke us)
      code = fatal;
      break;
    }
    if (ec) continue;
    if (sig == SIGCHLD) {
      if (keeper && !co_await keeper->on_child_exit()) {
        code = exit_code::failure;
        break;
      }
      continue;
    }
    spdlog::info("received SIG{}; finishing the jobs in flight, then stopping", sigabbrev_np(sig));
    break;
  }
  co_await w.stop();
  co_return code;
}

} // namespace

int serve(const config& cfg) {
  spdlog::info("forq {} serve starting with {}", FORQ_VERSION, to_json(cfg));

  // Signals arrive through the event loop from here on; SIGPIPE never kills us.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc(1);
  // Installed before Redis starts, so a SIGTERM during start-up is kept and acted on after it.
  asio::signal_set signals(ioc, SIGINT, SIGTERM, SIGCHLD);

  std::unique_ptr<embedded_redis> redis;
  std::string url = cfg.redis_url;
  if (url.empty()) {
    auto started = embedded_redis::start({.data_dir = cfg.data_dir, .aof = cfg.redis_aof});
    if (auto* err = std::get_if<embedded_redis_error>(&started)) {
      spdlog::critical("{}", err->message);
      return exit_code::fatal;
    }
    redis = std::move(std::get<std::unique_ptr<embedded_redis>>(started));
    url = redis->url();
  }

  spdlog::info("using Redis at {}", redact_url(url));
  spdlog::info("master ready (pid {}); it also runs the consumers until the pre-fork model "
               "lands (issue 5)",
               ::getpid());

  int code = exit_code::failure;
  int fatal = 0;
  {
    workers w(ioc.get_executor(), cfg, url);
    w.start([&](int c) {
      if (!fatal) fatal = c;
      signals.cancel();
    });
    asio::co_spawn(ioc, supervise(signals, redis.get(), w, fatal),
                   [&](std::exception_ptr e, int result) {
                     if (e) std::rethrow_exception(e);
                     code = result;
                   });
    ioc.run();
  }

  redis.reset(); // stops redis-server last, after everything that uses it
  spdlog::info("forq serve stopped");
  return code;
}

} // namespace forq::cli
