#pragma once

#include <chrono>
#include <cstdint>

namespace forq {

// forq's one backoff: waits that double from `first` up to `max`. With jitter, each wait is
// drawn from [w/2, w] (half fixed, half random), so processes that failed together do not try
// again together. Used by Redis reconnects, the supervisor's worker restarts, the embedded
// Redis's restarts, queue start-up, write refusals and job retries.
struct backoff_policy {
  std::chrono::milliseconds first{100};
  std::chrono::milliseconds max{1000};
  bool doubling = true; // false: every wait is `first` (at most `max`)
  bool jitter = false;
};

// The n-th wait (n from 1): first x 2^(n-1), at most max; with jitter, `random` (any 64-bit
// number; the same one gives the same wait) picks it within [w/2, w]. Pure.
std::chrono::milliseconds backoff_wait(const backoff_policy& p, int n, std::uint64_t random = 0);

// The same, counting the waits: next() after each failure, reset() after a success.
class backoff {
 public:
  explicit backoff(backoff_policy p, std::uint64_t seed = 0)
      : policy_(p)
      , state_(seed) {}

  std::chrono::milliseconds next();
  void reset() { waits_ = 0; }
  int waits() const { return waits_; } // next() calls since the last reset()
  const backoff_policy& policy() const { return policy_; }

 private:
  backoff_policy policy_;
  std::uint64_t state_; // splitmix64: jitter without a 2.5 KB generator per backoff
  int waits_ = 0;
};

} // namespace forq
