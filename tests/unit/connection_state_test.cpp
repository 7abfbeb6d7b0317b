// The connection's decisions, without sockets or timers.
#include "forq/redis/connection_state.hpp"

#include <gtest/gtest.h>

namespace {

using namespace forq::redis;
using namespace std::chrono_literals;
using check = connection_state::check;

TEST(connection_state, backoff_doubles_with_jitter_within_bounds) {
  connection_state s("redis 127.0.0.1:6379", {50ms, 1000ms}, 1);
  std::vector<std::pair<long, long>> bounds{{25, 50},   {50, 100},   {100, 200},  {200, 400},
                                            {400, 800}, {500, 1000}, {500, 1000}, {500, 1000}};
  for (auto [lo, hi] : bounds) {
    auto d = s.on_connect_failed("connection refused").delay.count();
    EXPECT_GE(d, lo);
    EXPECT_LE(d, hi);
  }
}

TEST(connection_state, jitter_spreads_clients_that_fail_together) {
  std::set<long> delays;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    connection_state s("redis x", {100ms, 1000ms}, seed);
    for (int i = 0; i < 4; ++i)
      s.on_connect_failed("refused");
    delays.insert(s.on_connect_failed("refused").delay.count());
  }
  EXPECT_GT(delays.size(), 5u);
}

TEST(connection_state, log_lines_an_operator_reads) {
  connection_state s("redis 127.0.0.1:6379", {400ms, 400ms}, 7);
  auto first = s.on_connect_failed("connection refused");
  EXPECT_TRUE(first.warn);
  EXPECT_EQ(first.log, "redis 127.0.0.1:6379 unreachable: connection refused; retrying in " +
                           std::to_string(first.delay.count()) + " ms");
  for (int i = 2; i < 10; ++i)
    EXPECT_EQ(s.on_connect_failed("connection refused").log, "") << i;
  auto tenth = s.on_connect_failed("connection refused");
  EXPECT_EQ(tenth.log.find("redis 127.0.0.1:6379 still unreachable after 10 attempts: "
                           "connection refused; retrying in "),
            0u)
      << tenth.log;

  auto t0 = steady_clock::now();
  EXPECT_EQ(s.on_ready(t0), "redis 127.0.0.1:6379 connected after 11 attempts");
  auto lost = s.on_lost("connection closed by the server", 3, t0);
  EXPECT_EQ(lost.log, "redis 127.0.0.1:6379 connection lost: connection closed by the server; "
                      "3 requests in flight failed; reconnecting in " +
                          std::to_string(lost.delay.count()) + " ms");
  EXPECT_EQ(s.on_ready(t0 + 1234ms), "redis 127.0.0.1:6379 reconnected after 1234 ms");
}

TEST(connection_state, first_connect_and_lost_without_requests) {
  connection_state s("redis r", {50ms, 1s}, 3);
  EXPECT_EQ(s.on_ready(steady_clock::now()), "redis r connected");
  auto lost = s.on_lost("end of file", 0, steady_clock::now());
  EXPECT_EQ(lost.log.find("requests"), std::string::npos);
  EXPECT_LE(lost.delay, 50ms); // a drop retries quickly: the first step of the backoff
}

TEST(connection_state, readiness_resets_the_backoff) {
  connection_state s("redis r", {50ms, 1000ms}, 3);
  for (int i = 0; i < 8; ++i)
    s.on_connect_failed("x");
  s.on_ready(steady_clock::now());
  EXPECT_LE(s.on_connect_failed("x").delay, 50ms);
}

TEST(connection_state, health_decisions) {
  auto t = steady_clock::now();
  // A late reply wins over everything.
  EXPECT_EQ(connection_state::health(t, t, t - 1ms, false, 2s), check::timed_out);
  EXPECT_EQ(connection_state::health(t, t, t, false, 2s), check::timed_out);
  EXPECT_EQ(connection_state::health(t, t - 10s, t + 1ms, false, 2s), check::nothing);
  // Idle long enough: ping. Busy, or pings disabled: nothing.
  EXPECT_EQ(connection_state::health(t, t - 2s, std::nullopt, true, 2s), check::ping);
  EXPECT_EQ(connection_state::health(t, t - 1s, std::nullopt, true, 2s), check::nothing);
  EXPECT_EQ(connection_state::health(t, t - 5s, std::nullopt, false, 2s), check::nothing);
  EXPECT_EQ(connection_state::health(t, t - 5s, std::nullopt, true, 0ms), check::nothing);
}

TEST(connection_state, next_check_is_the_earliest_thing_to_look_at) {
  auto t = steady_clock::now();
  EXPECT_EQ(connection_state::next_check(t, t, t + 300ms, false, 2s), t + 300ms);
  EXPECT_EQ(connection_state::next_check(t, t - 1500ms, std::nullopt, true, 2s), t + 500ms);
  EXPECT_EQ(connection_state::next_check(t, t - 5s, std::nullopt, true, 2s), t); // overdue: now
  EXPECT_EQ(connection_state::next_check(t, t, std::nullopt, false, 0ms), t + 1s);
  EXPECT_EQ(connection_state::next_check(t, t - 5s, std::nullopt, false, 2s), t + 1s); // busy
}

} // namespace
