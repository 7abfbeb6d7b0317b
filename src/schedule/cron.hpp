#pragma once

// When a recurring job is due (docs/schedules.md): a cron expression or a fixed interval, and
// the next instant after a given one, in UTC or in an IANA time zone across its DST changes. No
// Redis, no clocks of its own: time comes in as an argument, so every rule is unit-tested.

#include "forq/error.hpp"

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace forq::schedule {

using sys_seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

// A cron expression, read once: the allowed values of each field.
//   5 fields: minute hour day-of-month month day-of-week (second 0)
//   6 fields: second minute hour day-of-month month day-of-week
// Each field: `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the field's end),
// or a comma-separated list of those. Months JAN-DEC and days SUN-SAT by name (any case); day
// of week 0 or 7 is Sunday. `?` is `*` in the two day fields. Macros: @yearly (@annually),
// @monthly, @weekly, @daily (@midnight), @hourly.
// Days as cron has them: when both day fields are restricted, a day matches if either does;
// otherwise the restricted one decides. A day field is unrestricted, as croniter reads it, when
// an item of it is a bare `*` (or `?`), or when it allows every value (`1-31`; `*/1` or `1-7` in
// day of week).
struct cron {
  std::bitset<60> seconds, minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month; // 1..31
  std::bitset<13> months;        // 1..12
  std::bitset<7> days_of_week;   // 0..6, Sunday 0
  bool any_day_of_month = true, any_day_of_week = true;
  // The hour field is `*` or `*/n`: such an expression fires at every real occurrence of a local
  // time (twice in a repeated hour, never in a skipped one). Otherwise a skipped local time fires
  // at the first instant after it and a repeated one once, the first time.
  bool any_hour = true;
  std::string text; // as written
};

// The expression, or errc::invalid_value naming the field, the value and what is allowed. An
// expression that matches no day within 5 years (30 February) is refused too.
expected<cron> parse_cron(std::string_view text);

// The first instant strictly after `after` that `c` names, read in `zone` (nullptr: UTC).
// Nothing if there is none within 5 years of `after`.
std::optional<sys_seconds> next_after(const cron& c, sys_seconds after,
                                      const date::time_zone* zone = nullptr);

// An IANA zone by name ("Europe/London", "UTC"), or errc::invalid_value.
expected<const date::time_zone*> find_zone(std::string_view name);

} // namespace forq::schedule
