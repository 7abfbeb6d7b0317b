#pragma once

// The figures of `forq bench` (bench.cpp): a log-linear histogram that every worker process
// writes into shared memory, and the median/spread of repeated runs. No sockets, no processes:
// unit-tested on their own (tests/unit/bench_stats_test.cpp).

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <vector>

namespace forq::bench {

// HDR-style: values (ns) below 128 exactly, above in 64 linear steps per power of two, so a
// reported percentile is within 1.6% of the true one. Lock-free and fixed-size, so it can live
// in a MAP_SHARED region and take adds from every worker at once.
struct log_histogram {
  static constexpr int sub_bits = 6;
  static constexpr std::uint64_t sub = 1u << sub_bits;       // 64
  static constexpr std::size_t buckets = 2 * sub + 58 * sub; // up to 2^64 ns

  std::atomic<std::uint64_t> counts[buckets]{};
  std::atomic<std::uint64_t> total{0}, max{0};

  static std::size_t index(std::uint64_t v) {
    if (v < 2 * sub) return static_cast<std::size_t>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - sub_bits;
    return static_cast<std::size_t>(2 * sub + (shift - 1) * sub + ((v >> shift) - sub));
  }
  // The middle of bucket i's range.
  static std::uint64_t value_of(std::size_t i) {
    if (i < 2 * sub) return i;
    std::size_t shift = (i - 2 * sub) / sub + 1;
    std::uint64_t low = (sub + (i - 2 * sub) % sub) << shift;
    return low + ((std::uint64_t{1} << shift) >> 1);
  }

  void add(std::uint64_t v) {
    counts[index(v)].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
    auto m = max.load(std::memory_order_relaxed);
    while (v > m && !max.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }
  // The value at quantile q (0..1), e.g. 0.99; 0 when empty. q = 1 is the exact maximum.
  std::uint64_t quantile(double q) const {
    auto n = total.load(std::memory_order_relaxed);
    if (n == 0) return 0;
    if (q >= 1) return max.load(std::memory_order_relaxed);
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n));
    if (rank >= n) rank = n - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts[i].load(std::memory_order_relaxed);
      if (seen > rank) return std::min(value_of(i), max.load(std::memory_order_relaxed));
    }
    return max.load(std::memory_order_relaxed);
  }
};

// Median, min and max of one figure over repeated runs.
struct spread {
  double median = 0, min = 0, max = 0;
  static spread of(std::vector<double> v) {
    spread s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    s.min = v.front();
    s.max = v.back();
    auto n = v.size();
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
  }
};

// What a run's per-job counters say: every job completed exactly once, or how many were lost
// (never completed) and duplicated (completed more than once).
struct verdict_counts {
  std::uint64_t completed_once = 0, lost = 0, duplicated = 0;
  bool ok() const { return lost == 0 && duplicated == 0; }
};
inline verdict_counts verify(const std::atomic<std::uint8_t>* seen, std::size_t n) {
  verdict_counts v;
  for (std::size_t i = 0; i < n; ++i) {
    auto c = seen[i].load(std::memory_order_relaxed);
    if (c == 0)
      ++v.lost;
    else if (c == 1)
      ++v.completed_once;
    else
      ++v.duplicated;
  }
  return v;
}

} // namespace forq::bench
