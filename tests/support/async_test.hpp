#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>

namespace forq::test {

// Runs a coroutine test on a fresh single-threaded io_context. The test fails (it does not hang)
// if the coroutine has not finished within `deadline`, and fails with the message if it throws.
// Returns true if the coroutine finished.
bool run_async(std::function<boost::asio::awaitable<void>()> body,
               std::chrono::milliseconds deadline = std::chrono::seconds(10));

} // namespace forq::test
