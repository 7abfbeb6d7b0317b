#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>

// ASSERT_* returns, which a coroutine cannot: this fails the test and leaves the coroutine.
#define FORQ_CO_ASSERT(cond)                                                                       \
  if (!(cond)) {                                                                                   \
    ADD_FAILURE() << "assertion failed: " #cond;                                                   \
    co_return;                                                                                     \
  } else                                                                                           \
    (void)0

namespace forq::test {

// Runs a coroutine test on a fresh single-threaded io_context. The test fails (it does not hang)
// if the coroutine has not finished within `deadline`, and fails with the message if it throws.
// Returns true if the coroutine finished.
bool run_async(std::function<boost::asio::awaitable<void>()> body,
               std::chrono::milliseconds deadline = std::chrono::seconds(10));

// Waits on a timer of the calling coroutine's executor.
boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d);

} // namespace forq::test
