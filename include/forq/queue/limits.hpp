#pragma once

#include "forq/error.hpp"

#include <string_view>

namespace forq::queue {

// The limits of a job's settings and of a queue's rate limit: one set, used by the CLI's
// options, the HTTP API's fields, the C++ client (check_job, set_rate_limit), the retry policy
// (retry.hpp) and the consumer (docs/protocol.md). Each refusal says the setting's name, the
// value and what is allowed. No sockets, no Redis.
struct bounds {
  std::string_view name; // as the API and the protocol spell it
  long long lo, hi;
  std::string_view unit; // after the range: " ms (one year)"
};
inline constexpr bounds priority_bounds{"priority", 0, 9, " (higher runs first)"};
inline constexpr bounds attempts_bounds{"attempts", 1, 1000, ""};
inline constexpr bounds delay_bounds{"delay_ms", 0, 31'536'000'000LL, " ms (one year)"};
inline constexpr bounds rate_max_bounds{"N", 1, 1'000'000, " jobs per interval"};
inline constexpr bounds rate_interval_bounds{"per_ms", 1, 86'400'000, " ms (one day)"};
// A queue's events stream, while on: about this many entries kept (docs/job-control.md).
inline constexpr bounds events_max_bounds{"max", 100, 10'000'000, " events kept"};
inline constexpr long long events_max_default = 10'000;

// Nothing if `value` is in bounds, else errc::invalid_value with "VALUE is not allowed: use a whole
// number from LO to HI<unit>".
expected<> check_bounds(const bounds& b, long long value);
// The same for a value as a person typed it (a flag's text): not a whole number is refused in
// the same words.
expected<> check_bounds(const bounds& b, std::string_view text);
// A retry policy's waits (retry.hpp): 1 ms to 7 days.
inline constexpr bounds backoff_bounds{"backoff", 1, 7LL * 24 * 3600 * 1000, " ms (7 days)"};

} // namespace forq::queue
