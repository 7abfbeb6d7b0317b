#pragma once

// Work in flight, counted, and one way to wait for it (Seastar's gate is the model): each piece
// of work enters (try_enter: refused once the gate is closed) and leaves; close() takes no more;
// wait() completes when the gate is closed and empty. "Stop taking work and wait for what is in
// flight" is then two lines: close(), co_await wait(deadline). Single-threaded, like the loop
// that owns it; any number of waiters, each with its own deadline.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace forq {

class gate {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  gate() = default;
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;

  // Counts one more piece of work, unless the gate is closed (then false: do not start it).
  bool try_enter() {
    if (closed_) return false;
    ++count_;
    return true;
  }
  // Counts one more even when closed: work that must be waited for whatever (an ack of a job
  // that finished while the gate closed).
  void enter() { ++count_; }
  void leave() {
    if (count_ > 0) --count_;
    if (count_ == 0) wake();
  }
  void close() {
    closed_ = true;
    wake();
  }
  bool closed() const { return closed_; }
  std::size_t count() const { return count_; }
  // Closed and nothing in: what wait() waits for.
  bool done() const { return closed_ && count_ == 0; }

  // Completes when done() (true), or at `until` (false: something is still in). With `closed`
  // false, waits only for the count to reach zero (an open gate's "everything so far").
  boost::asio::awaitable<bool> wait(time_point until = time_point::max(), bool closed = true) {
    auto ready = [&] { return count_ == 0 && (closed_ || !closed); };
    if (ready()) co_return true;
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, until);
    waiters_.push_back(&t);
    while (!ready() && std::chrono::steady_clock::now() < until)
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &t));
    co_return ready();
  }

 private:
  void wake() {
    for (auto* t : waiters_)
      t->cancel();
  }
  std::size_t count_ = 0;
  bool closed_ = false;
  std::vector<boost::asio::steady_timer*> waiters_;
};

} // namespace forq
