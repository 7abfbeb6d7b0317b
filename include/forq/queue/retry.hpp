#pragma once

// The retry policy: how many attempts a job gets and how long it waits between them
// (docs/retries.md). Layered: forq's defaults, the worker's `retry` setting, the queue's
// (--queues NAME@RETRY), then the job's own `retry` field (and its `max_attempts`). No sockets,
// no Redis: configuration, producers and the consumer all read policies through this one file.

#include "forq/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace forq::queue {

struct retry_policy {
  int max_attempts = 3;
  std::chrono::milliseconds backoff{1000};                      // the first wait (the base)
  bool exponential = true;                                      // else fixed
  std::chrono::milliseconds max_backoff{std::chrono::hours(1)}; // no wait is longer
  // Each wait drawn between half of it and all of it, so the retries of a burst spread out.
  // Unset: on for exponential, off for fixed.
  std::optional<bool> jitter;
};

// The parts of a policy one level sets; the rest come from the level below. Written as text
// everywhere a person gives it: tokens separated by '/', in any order, each one of
//   a whole number            attempts, 1 to 1000
//   fixed | exponential       how the wait grows (exponential: doubles per attempt)
//   a duration with a unit    ms, s, m, h or d, 1ms to 7d: the first is the base wait, a second
//                             (or one written max=DURATION) the cap
//   jitter | nojitter
// e.g. "5", "10/fixed/30s", "exponential/2s/10m", "8/500ms/1h/nojitter", "max=10m".
struct retry_override {
  std::optional<int> attempts;
  std::optional<bool> exponential;
  std::optional<std::chrono::milliseconds> base, max;
  std::optional<bool> jitter;

  bool empty() const { return !attempts && !exponential && !base && !max && !jitter; }
  bool operator==(const retry_override&) const = default;
};

// The override `text` says, or errc::invalid_value with why it cannot be one (naming the part and
// what is allowed; the caller names the setting and quotes the text).
expected<retry_override> parse_retry(std::string_view text);
// The same override as text that parse_retry reads back: attempts, kind, base, cap, jitter.
std::string to_string(const retry_override& r);
// Whether an override built in code (not parsed) is within the limits, or errc::invalid_value
// with why not.
expected<> check_retry(const retry_override& r);
// `below` with the parts `r` sets replaced.
retry_policy apply(retry_policy below, const retry_override& r);
// The policy in full, as text: "3/exponential/1s/1h/jitter".
std::string to_string(const retry_policy& p);

} // namespace forq::queue
