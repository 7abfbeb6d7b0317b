#include "forq/redis/connection_state.hpp"

#include "backoff.hpp"

#include <algorithm>

namespace forq::redis {

connection_state::connection_state(std::string where, reconnect_policy policy, std::uint64_t seed)
    : where_(std::move(where))
    , policy_(policy)
    , rng_(seed) {}

milliseconds connection_state::next_delay() {
  // failures_ counts the attempt that just failed: 1 -> min, 2 -> 2*min, ...; half fixed, half
  // random, so clients that failed together do not retry together.
  const backoff_policy waits{policy_.min_delay, policy_.max_delay, true, true};
  return backoff_wait(waits, failures_, rng_());
}

connection_state::step connection_state::on_connect_failed(std::string_view why) {
  ++failures_;
  auto delay = next_delay();
  step s{delay, {}, true};
  // The first failure and every tenth after it: enough to see, not enough to flood.
  if (failures_ == 1)
    s.log = where_ + " unreachable: " + std::string(why) + "; retrying in " +
            std::to_string(delay.count()) + " ms";
  else if (failures_ % 10 == 0)
    s.log = where_ + " still unreachable after " + std::to_string(failures_) +
            " attempts: " + std::string(why) + "; retrying in " + std::to_string(delay.count()) +
            " ms";
  return s;
}

std::string connection_state::on_ready(steady_clock::time_point now) {
  std::string line;
  if (!ever_ready_ && failures_ == 0)
    line = where_ + " connected";
  else if (!ever_ready_)
    line = where_ + " connected after " + std::to_string(failures_ + 1) + " attempts";
  else {
    line = where_ + " reconnected";
    if (down_since_) {
      auto down = std::chrono::duration_cast<milliseconds>(now - *down_since_).count();
      line += " after " + std::to_string(down) + " ms";
    }
  }
  ever_ready_ = true;
  failures_ = 0;
  down_since_.reset();
  return line;
}

connection_state::step connection_state::on_lost(std::string_view why, std::size_t failed,
                                                 steady_clock::time_point now) {
  down_since_ = now;
  // Retry after about min_delay; the first reconnect that fails then says so ("unreachable").
  failures_ = 1;
  auto delay = next_delay();
  failures_ = 0;
  std::string line = where_ + " connection lost: " + std::string(why);
  if (failed > 0)
    line += "; " + std::to_string(failed) + (failed == 1 ? " request" : " requests") +
            " in flight failed";
  line += "; reconnecting in " + std::to_string(delay.count()) + " ms";
  return {delay, line, true};
}

connection_state::check
connection_state::health(steady_clock::time_point now, steady_clock::time_point last_traffic,
                         std::optional<steady_clock::time_point> oldest_deadline, bool idle,
                         milliseconds ping_after) {
  if (oldest_deadline && now >= *oldest_deadline) return check::timed_out;
  if (idle && ping_after.count() > 0 && now - last_traffic >= ping_after) return check::ping;
  return check::nothing;
}

steady_clock::time_point
connection_state::next_check(steady_clock::time_point now, steady_clock::time_point last_traffic,
                             std::optional<steady_clock::time_point> oldest_deadline, bool idle,
                             milliseconds ping_after) {
  // Look again at least once a second, so a new state is never missed for long.
  auto when = now + milliseconds(1000);
  if (oldest_deadline) when = std::min(when, *oldest_deadline);
  if (idle && ping_after.count() > 0)
    when = std::min(when, std::max(now, last_traffic + ping_after));
  return when;
}

} // namespace forq::redis
