// A queue's figures by the minute (src/queue/history.hpp): the latency buckets, the percentiles
// estimated from them and the reading of the hash minutes.lua writes.

#include "queue/history.hpp"

#include <gtest/gtest.h>

using namespace forq::queue::history;
using forq::redis::reply;

namespace {

reply hash(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::vector<reply> kv;
  for (const auto& [k, v] : fields) {
    kv.push_back(reply::make_string(k));
    kv.push_back(reply::make_string(v));
  }
  return reply::make_array(std::move(kv));
}

} // namespace

TEST(history, a_latency_falls_in_the_first_bucket_whose_bound_holds_it) {
  EXPECT_EQ(bucket_of(-5), 0u); // a clock that stepped back: the smallest bucket
  EXPECT_EQ(bucket_of(0), 0u);
  EXPECT_EQ(bucket_of(100), 0u);
  EXPECT_EQ(bucket_of(101), 1u);
  EXPECT_EQ(bucket_of(1000), 3u);
  EXPECT_EQ(bucket_of(1001), 4u);
  EXPECT_EQ(bucket_of(60'000'000), bounds_us.size() - 1);
  EXPECT_EQ(bucket_of(60'000'001), bounds_us.size()); // over a minute
  EXPECT_EQ(bucket_of(INT64_MAX), bounds_us.size());
}

TEST(history, percentiles_are_read_linearly_inside_their_bucket) {
  buckets b{};
  EXPECT_FALSE(quantile_ms(b, 0.5).has_value());
  // 100 attempts between 250 and 500 µs: the median is half-way, the p99 near the top.
  b[bucket_of(400)] = 100;
  EXPECT_DOUBLE_EQ(*quantile_ms(b, 0.5), 0.375);
  EXPECT_NEAR(*quantile_ms(b, 0.99), 0.4975, 0.001);
  // One slow attempt in 100 (2 to 2.5 s) moves the p99 there, the median stays.
  b[bucket_of(400)] = 99;
  b[bucket_of(2'200'000)] = 1;
  EXPECT_NEAR(*quantile_ms(b, 0.5), 0.376, 0.001);
  EXPECT_NEAR(*quantile_ms(b, 0.99), 0.4975, 0.01);
  EXPECT_DOUBLE_EQ(*quantile_ms(b, 1.0), 2500.0);
  // Past a minute there is no upper bound: said as a minute.
  buckets slow{};
  slow[bounds_us.size()] = 3;
  EXPECT_DOUBLE_EQ(*quantile_ms(slow, 0.5), 60000.0);
}

TEST(history, reading_gives_the_minutes_asked_for_oldest_first_with_gaps_as_zeros) {
  const std::int64_t now = 29'000'000; // a minute number (epoch ms / 60000)
  const auto all = hash({
      {"trimmed", "29000000"},
      {std::to_string(now) + ":d", "7"},
      {std::to_string(now) + ":l2", "7"}, // 250..500 µs
      {std::to_string(now - 2) + ":d", "40"},
      {std::to_string(now - 2) + ":f", "2"},
      {std::to_string(now - 2) + ":l0", "21"},
      {std::to_string(now - 2) + ":l3", "21"},
      {std::to_string(now - 3) + ":d", "1000"}, // older than asked for
      {std::to_string(now + 1) + ":d", "5"},    // a worker whose clock runs ahead: not shown
      {std::to_string(now) + ":l99", "5"},      // not a bucket: ignored
      {std::to_string(now) + ":x", "5"},        // a figure this version does not know
      {"junk", "1"},
  });
  const auto m = read(all, now, 3);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].at_ms, (now - 2) * 60000);
  EXPECT_EQ(m[2].at_ms, now * 60000);
  EXPECT_EQ(m[0].done, 40u);
  EXPECT_EQ(m[0].failed, 2u);
  EXPECT_EQ(m[0].started, 42u);
  EXPECT_DOUBLE_EQ(*m[0].pickup_p50_ms, 0.1);  // the 21st of 42 is the top of the first bucket
  EXPECT_DOUBLE_EQ(*m[0].pickup_p99_ms, 0.99); // 41.58th: 98% into 500..1000 µs
  EXPECT_EQ(m[1].done, 0u);
  EXPECT_EQ(m[1].started, 0u);
  EXPECT_FALSE(m[1].pickup_p50_ms.has_value());
  EXPECT_EQ(m[2].done, 7u);
  EXPECT_EQ(m[2].started, 7u);
  EXPECT_DOUBLE_EQ(*m[2].pickup_p50_ms, 0.375);
  // No hash at all (a queue nothing ran on for an hour): zeros, still the minutes asked for.
  const auto none = read(reply(), now, 60);
  ASSERT_EQ(none.size(), 60u);
  EXPECT_EQ(none.back().at_ms, now * 60000);
  EXPECT_EQ(none.front().done + none.back().done, 0u);
  const auto json = none.back().to_json();
  EXPECT_TRUE(json.at("pickup_p50_ms").is_null());
}

TEST(history, an_empty_delta_sends_nothing) {
  delta d;
  EXPECT_TRUE(d.empty());
  d.pickup[4] = 1;
  EXPECT_FALSE(d.empty());
}
