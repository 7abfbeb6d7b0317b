// `forq serve`, the master's side. Today it brings up the embedded Redis (or takes the
// configured one), then waits for a stop signal; the process model (pre-fork workers), the
// queues and the HTTP surface grow this file in their own issues (see docs/architecture.md).
#include "commands.hpp"
#include "forq/embedded_redis.hpp"
#include "forq/exit_codes.hpp"
#include "forq/redis_url.hpp"

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

asio::awaitable<int> supervise(asio::signal_set& signals, embedded_redis* redis) {
  std::optional<redis_keeper> keeper;
  if (redis) keeper.emplace(*redis);
  while (true) {
    int sig = co_await signals.async_wait(asio::use_awaitable);
    if (sig == SIGCHLD) {
      if (keeper && !co_await keeper->on_child_exit()) co_return exit_code::failure;
      continue;
    }
    spdlog::info("received SIG{}; shutting down", sigabbrev_np(sig));
    co_return exit_code::ok;
  }
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
  spdlog::info("master ready (pid {}); job processing is not built yet: this version only "
               "keeps Redis up until SIGINT or SIGTERM",
               ::getpid());

  int code = exit_code::failure;
  asio::co_spawn(ioc, supervise(signals, redis.get()), [&](std::exception_ptr e, int result) {
    if (e) std::rethrow_exception(e);
    code = result;
  });
  ioc.run();

  redis.reset(); // stops redis-server last, after everything that uses it
  spdlog::info("forq serve stopped");
  return code;
}

} // namespace forq::cli
