// forq::gate (src/gate.hpp): counted work, closing, and waits with deadlines; timers only, no
// sockets.
#include "gate.hpp"
#include "support/async_test.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using forq::gate;
using forq::test::sleep_for;

TEST(gate, a_closed_gate_refuses_work_and_its_wait_ends_when_the_last_piece_leaves) {
  gate g;
  std::vector<std::string> log;
  forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        EXPECT_TRUE(g.try_enter());
        EXPECT_TRUE(g.try_enter());
        for (auto ms : {30, 60})
          asio::co_spawn(
              ex,
              [&, ms]() -> asio::awaitable<void> {
                co_await sleep_for(std::chrono::milliseconds(ms));
                log.push_back("left " + std::to_string(ms));
                g.leave();
              },
              asio::detached);
        g.close();
        EXPECT_FALSE(g.try_enter()) << "closed: no new work";
        EXPECT_FALSE(g.done());
        const bool all = co_await g.wait(std::chrono::steady_clock::now() + 5s);
        log.push_back("waited");
        EXPECT_TRUE(all);
        EXPECT_TRUE(g.done());
      },
      5s);
  EXPECT_EQ(log, (std::vector<std::string>{"left 30", "left 60", "waited"}));
}

TEST(gate, a_wait_ends_at_its_deadline_when_work_is_still_in_and_each_waiter_has_its_own) {
  gate g;
  forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        g.enter();
        g.close();
        int early = -1;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              early = co_await g.wait(std::chrono::steady_clock::now() + 20ms);
            },
            asio::detached);
        const auto started = std::chrono::steady_clock::now();
        EXPECT_FALSE(co_await g.wait(started + 80ms)) << "still one in at the deadline";
        EXPECT_GE(std::chrono::steady_clock::now() - started, 80ms);
        EXPECT_EQ(early, 0) << "the shorter wait ended at its own deadline";
        g.leave();
        EXPECT_TRUE(co_await g.wait(std::chrono::steady_clock::now() + 1s));
      },
      5s);
}

TEST(gate, an_open_gate_can_be_waited_for_until_it_is_empty) {
  gate g;
  forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        EXPECT_TRUE(co_await g.wait(std::chrono::steady_clock::now(), false)) << "empty";
        g.enter();
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              co_await sleep_for(20ms);
              g.leave();
            },
            asio::detached);
        EXPECT_TRUE(co_await g.wait(std::chrono::steady_clock::now() + 5s, false));
        EXPECT_FALSE(g.closed());
        EXPECT_TRUE(g.try_enter()) << "still open";
      },
      5s);
}

} // namespace
