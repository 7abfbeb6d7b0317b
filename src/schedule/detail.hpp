#pragma once

// What the schedule stage's files share (definition.cpp, schedule.cpp, keeper.cpp): a queue's
// schedule keys, a whole-number reader, and a definition's slot clock. Not installed.

#include "queue/protocol.hpp"
#include "schedule/schedule.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forq::schedule::detail {

// A queue's schedule keys, under its hash tag.
struct schedule_keys {
  explicit schedule_keys(std::string_view queue)
      : schedule_keys(queue::keys(queue)) {}
  explicit schedule_keys(const queue::keys& k)
      : schedules(k.schedules)
      , state(k.schedule_state)
      , due(k.schedule_due) {}
  std::string schedules, state, due;
};

inline std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

} // namespace forq::schedule::detail

namespace forq::schedule {

// A definition's slots, its cron expression and zone read once (a keeper catching up on missed
// slots asks for many).
class slot_clock {
 public:
  explicit slot_clock(const definition& d);
  // The first slot strictly after `after_ms`, within the start and the end.
  std::optional<std::int64_t> next(std::int64_t after_ms) const;

 private:
  std::optional<std::int64_t> unbounded(std::int64_t after_ms) const;

  std::int64_t every_;
  std::optional<std::int64_t> start_, end_;
  std::optional<cron> cron_;
  const date::time_zone* zone_ = nullptr;
};

} // namespace forq::schedule
