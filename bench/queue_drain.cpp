// forq_queue_drain: redis-server's cost per job of forq's own queue protocol (docs/protocol.md)
// for a drain of no-op jobs: enqueue N jobs (64 in flight, one request each), then one consumer
// runs them with a no-op handler until all are acknowledged. Prints redis-server CPU µs per job
// (INFO cpu), commands per job (INFO commandstats) per phase, and the drain's jobs/s.
#include "forq/queue/producer.hpp"
#include "log.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "redis/pool.hpp"
#include "redis_figures.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace {
namespace asio = boost::asio;
using namespace forq;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> pause_ms(int ms) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(asio::use_awaitable);
}
} // namespace

int main(int argc, char** argv) {
  std::string url;
  long jobs = 100000, concurrency = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url")
      url = v;
    else if (k == "--jobs")
      jobs = std::stol(v);
    else if (k == "--concurrency")
      concurrency = std::stol(v);
  }
  if (url.empty()) {
    std::fprintf(stderr, "usage: forq_queue_drain --url URL [--jobs N] [--concurrency C]\n");
    return 2;
  }
  init_logging(log_format::text, log_level::warn, "bench");
  asio::io_context ioc(1);
  redis::pool_options po;
  po.connection.endpoint = parse_redis_url(url).value();
  po.role = "bench";
  redis::pool pool(ioc.get_executor(), po);
  const std::string queue_name = "drain" + std::to_string(::getpid());
  int exit_code = 0;

  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto body = [&]() -> asio::awaitable<void> {
          auto& conn = pool.commands();
          co_await queue::init_queue(conn, queue_name);
          auto before = co_await bench::snapshot(conn);
          long next = 0, running = 64;
          auto ex = co_await asio::this_coro::executor;
          for (int p = 0; p < 64; ++p)
            asio::co_spawn(
                ex,
                [&]() -> asio::awaitable<void> {
                  queue::new_job j;
                  j.handler = "noop";
                  j.payload = "{\"data\":\"" + std::string(89, 'x') + "\"}"; // ~100 bytes
                  while (next++ < jobs)
                    if (!co_await queue::enqueue(conn, queue_name, j)) exit_code = 1;
                  --running;
                },
                asio::detached);
          while (running > 0)
            co_await pause_ms(1);
          auto enqueued = co_await bench::snapshot(conn);
          bench::report("enqueue", before, enqueued, double(jobs), double(jobs));

          queue::consumer_options o;
          o.queue = queue_name;
          o.concurrency = static_cast<std::size_t>(concurrency);
          o.block = std::chrono::milliseconds(100);
          queue::handler_map h{
              {"noop",
               [](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
                 co_return queue::outcome::success();
               }}};
          queue::consumer c(pool, o, h);
          auto start = std::chrono::steady_clock::now();
          auto watch = [&]() -> asio::awaitable<void> {
            while (c.stats().done < static_cast<std::uint64_t>(jobs))
              co_await pause_ms(1);
            c.stop();
          };
          co_await (c.run() && watch());
          auto seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          auto drained = co_await bench::snapshot(conn);
          bench::report("drain", enqueued, drained, double(jobs), 0);
          bench::report("total", before, drained, double(jobs), 0);
          std::printf("drain    %.0f jobs/s with one consumer process\n", double(jobs) / seconds);
          pool.stop();
        };
        co_await (pool.run() && body());
      },
      asio::detached);
  ioc.run();
  return exit_code;
}
