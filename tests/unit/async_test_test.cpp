// The coroutine-test helper must itself fail a test that hangs or throws.
#include "support/async_test.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

using forq::test::sleep_for;

TEST(run_async, passes_a_coroutine_that_finishes_in_time) {
  int steps = 0;
  EXPECT_TRUE(forq::test::run_async([&]() -> asio::awaitable<void> {
    co_await sleep_for(1ms);
    ++steps;
  }));
  EXPECT_EQ(steps, 1);
}

TEST(run_async, fails_a_coroutine_that_misses_its_deadline) {
  EXPECT_NONFATAL_FAILURE(
      forq::test::run_async([]() -> asio::awaitable<void> { co_await sleep_for(1h); }, 50ms),
      "did not finish within 50 ms");
}

TEST(run_async, fails_a_coroutine_that_throws) {
  EXPECT_NONFATAL_FAILURE(forq::test::run_async([]() -> asio::awaitable<void> {
                            co_await sleep_for(1ms);
                            throw std::runtime_error("boom");
                          }),
                          "the coroutine threw: boom");
}

} // namespace
