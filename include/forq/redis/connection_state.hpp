#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace forq::redis {

using steady_clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct reconnect_policy {
  milliseconds min_delay{50};   // the first retry waits about this long
  milliseconds max_delay{1000}; // the delay doubles up to this bound (jitter stays within it)
};

// The decisions of one Redis connection, with no sockets or timers: when to retry and how long
// to wait, when to ping, when a reply is overdue, and the one log line each change deserves.
// connection.cpp carries the decisions out.
class connection_state {
 public:
  // `where` names the server in log lines: "redis 127.0.0.1:6379".
  connection_state(std::string where, reconnect_policy policy, std::uint64_t seed);

  struct step {
    milliseconds delay;
    std::string log;   // empty: nothing worth a line this time
    bool warn = false; // log at warning level
  };

  // Connecting or logging in failed.
  step on_connect_failed(std::string_view why);
  // Connected and logged in; backoff starts again from the minimum. Returns the line to log.
  std::string on_ready(steady_clock::time_point now);
  // A working connection broke, failing `failed` requests that were awaiting replies.
  step on_lost(std::string_view why, std::size_t failed, steady_clock::time_point now);

  // Exponential backoff with jitter: about min * 2^(n-1), never above max, never below min/2.
  milliseconds next_delay();

  enum class check { nothing, ping, timed_out };
  // What the health loop should do now. `oldest_deadline`: the reply deadline of the oldest
  // request awaiting a reply, if any. An idle connection (nothing in flight, no traffic for
  // `ping_after`) is pinged so that a silent peer is found out; 0 disables pings.
  static check health(steady_clock::time_point now, steady_clock::time_point last_traffic,
                      std::optional<steady_clock::time_point> oldest_deadline, bool idle,
                      milliseconds ping_after);
  // When to look again.
  static steady_clock::time_point
  next_check(steady_clock::time_point now, steady_clock::time_point last_traffic,
             std::optional<steady_clock::time_point> oldest_deadline, bool idle,
             milliseconds ping_after);

 private:
  std::string where_;
  reconnect_policy policy_;
  std::mt19937_64 rng_;
  int failures_ = 0; // consecutive failed attempts
  bool ever_ready_ = false;
  std::optional<steady_clock::time_point> down_since_;
};

} // namespace forq::redis
