#include "support/async_test.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace forq::test {

bool run_async(std::function<boost::asio::awaitable<void>()> body,
               std::chrono::milliseconds deadline) {
  boost::asio::io_context ioc(1);
  bool done = false;
  boost::asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    done = true;
    ioc.stop(); // whatever the body left running (servers, loops) ends with it
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      ADD_FAILURE() << "the coroutine threw: " << x.what();
    } catch (...) {
      ADD_FAILURE() << "the coroutine threw a non-standard exception";
    }
  });
  ioc.run_for(deadline);
  if (!done) ADD_FAILURE() << "the coroutine did not finish within " << deadline.count() << " ms";
  return done;
}

boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

} // namespace forq::test
