#pragma once

// The consumer's decision after a failed attempt: retry (when) or dead (why). Pure, unit-tested
// on its own; src/queue/attempts.cpp carries it out.

#include "forq/queue/retry.hpp"

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace forq::queue {

// What happens to a job whose attempt failed. No sockets: unit-tested on its own.
struct verdict {
  bool retry;                      // else: dead
  std::chrono::milliseconds delay; // retry only
  std::string reason;              // dead only: why, in an operator's words
};

// attempt_made: attempts made including the one that failed (>= 1). permanent: the handler
// said retrying cannot help. retry_after: the handler's own wish (Retry-After), used as is
// (within max_backoff).
verdict decide(const retry_policy& p, int attempt_made, bool permanent, std::string_view error,
               std::optional<std::chrono::milliseconds> retry_after, std::mt19937_64& rng);

} // namespace forq::queue
