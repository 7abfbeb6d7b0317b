// forq bench's figures (src/bench/stats.hpp): the shared log-linear histogram, the spread
// of repeated runs, and the per-job verdict that fails a run that loses or duplicates jobs.
#include "bench/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

namespace {

using forq::bench::log_histogram;

TEST(bench_histogram, small_values_are_exact_and_large_ones_within_two_percent) {
  auto h = std::make_unique<log_histogram>();
  for (std::uint64_t v = 0; v < 128; ++v)
    EXPECT_EQ(log_histogram::value_of(log_histogram::index(v)), v);
  for (std::uint64_t v : {128ull, 1000ull, 65535ull, 123456789ull, 1ull << 40, ~0ull >> 1}) {
    auto shown = static_cast<double>(log_histogram::value_of(log_histogram::index(v)));
    EXPECT_LT(std::abs(shown - static_cast<double>(v)) / static_cast<double>(v), 0.016) << v;
    EXPECT_LT(log_histogram::index(v), log_histogram::buckets);
  }
  EXPECT_LT(log_histogram::index(~0ull), log_histogram::buckets);
  // Buckets are ordered as the values are.
  for (std::uint64_t v = 1; v < 1000000; v = v * 3 / 2 + 1)
    EXPECT_LE(log_histogram::index(v - 1), log_histogram::index(v));
}

TEST(bench_histogram, quantiles_of_a_known_distribution) {
  auto h = std::make_unique<log_histogram>();
  EXPECT_EQ(h->quantile(0.5), 0u); // empty
  // 1..100000 ns, once each: the q-quantile is about q * 100000.
  std::vector<std::uint64_t> values(100000);
  for (std::uint64_t i = 0; i < values.size(); ++i)
    values[i] = i + 1;
  std::shuffle(values.begin(), values.end(), std::mt19937_64(7));
  for (auto v : values)
    h->add(v);
  EXPECT_EQ(h->total.load(), 100000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto got = static_cast<double>(h->quantile(q));
    EXPECT_NEAR(got, q * 100000, q * 100000 * 0.016) << q;
  }
  EXPECT_EQ(h->quantile(1.0), 100000u); // the maximum, exactly
}

TEST(bench_spread, median_min_max) {
  auto s = forq::bench::spread::of({5, 1, 3});
  EXPECT_EQ(s.median, 3);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 5);
  EXPECT_EQ(forq::bench::spread::of({4, 1, 3, 2}).median, 2.5);
}

TEST(bench_verify, counts_lost_and_duplicated_jobs) {
  std::vector<std::atomic<std::uint8_t>> seen(5);
  for (auto& s : seen)
    s = 1;
  EXPECT_TRUE(forq::bench::verify(seen.data(), seen.size()).ok());
  seen[1] = 0;
  seen[3] = 2;
  auto v = forq::bench::verify(seen.data(), seen.size());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.lost, 1u);
  EXPECT_EQ(v.duplicated, 1u);
  EXPECT_EQ(v.completed_once, 3u);
}

} // namespace
