#include "support/one_job.hpp"

#include "support/async_test.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

namespace forq::test {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

one_job run_one_job(const redis::pool_options& pool_opts, std::function<queue::handler()> make,
                    const std::string& payload, int max_attempts, std::chrono::milliseconds lease,
                    std::function<asio::awaitable<void>()> midway,
                    std::function<void(queue::consumer_options&)> configure) {
  one_job out;
  run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        redis::pool pool(ex, pool_opts);
        queue::consumer_options co;
        co.queue = "work";
        co.block = 100ms;
        co.lease = lease;
        co.retry.backoff = 10ms;
        co.retry.exponential = false;
        co.retry.max_attempts = max_attempts;
        if (configure) configure(co);
        queue::handler_map h;
        h.emplace("x", make());
        queue::consumer c(pool, co, h);
        client cl(pool.commands());
        auto consume = [&]() -> asio::awaitable<void> { co_await c.run(); };
        auto drive = [&]() -> asio::awaitable<void> {
          queue::new_job j;
          j.handler = "x";
          j.payload = payload;
          auto started = std::chrono::steady_clock::now();
          auto r = co_await cl.enqueue("work", j);
          EXPECT_TRUE(r);
          if (midway) co_await midway();
          while (c.stats().done + c.stats().dead < 1)
            co_await sleep_for(5ms);
          out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - started);
          c.stop();
          if (r) {
            auto got = co_await cl.get_job("work", r->id);
            if (got && *got) out.info = **got;
          }
        };
        auto all = [&]() -> asio::awaitable<void> {
          co_await (consume() && drive());
          pool.stop();
        };
        co_await (pool.run() && all());
      },
      60s);
  return out;
}

} // namespace forq::test
