#include "backoff.hpp"

#include <gtest/gtest.h>

#include <set>

namespace {

using forq::backoff;
using forq::backoff_policy;
using forq::backoff_wait;
using namespace std::chrono_literals;

TEST(backoff, doubles_from_the_first_wait_up_to_the_cap) {
  backoff_policy p{100ms, 1000ms};
  EXPECT_EQ(backoff_wait(p, 1), 100ms);
  EXPECT_EQ(backoff_wait(p, 2), 200ms);
  EXPECT_EQ(backoff_wait(p, 4), 800ms);
  EXPECT_EQ(backoff_wait(p, 5), 1000ms);
  EXPECT_EQ(backoff_wait(p, 1000000), 1000ms);          // no overflow however long it fails
  EXPECT_EQ(backoff_wait({300ms, 1000ms}, 3), 1000ms);  // 1,200 capped
  EXPECT_EQ(backoff_wait({5000ms, 1000ms}, 1), 1000ms); // a first wait above the cap: the cap
  backoff_policy fixed{250ms, 1000ms, false};
  EXPECT_EQ(backoff_wait(fixed, 1), 250ms);
  EXPECT_EQ(backoff_wait(fixed, 9), 250ms);
}

TEST(backoff, jitter_stays_within_the_upper_half_and_spreads) {
  backoff_policy p{100ms, 1000ms, true, true};
  std::set<long long> seen;
  for (std::uint64_t r = 0; r < 1000; ++r) {
    auto w = backoff_wait(p, 4, r * 7919); // 800 ms
    EXPECT_GE(w, 400ms);
    EXPECT_LE(w, 800ms);
    seen.insert(w.count());
  }
  EXPECT_GT(seen.size(), 300u);
  EXPECT_EQ(backoff_wait(p, 4, 12345), backoff_wait(p, 4, 12345)); // a pure function
}

TEST(backoff, counts_its_waits_and_starts_again_after_reset) {
  backoff b({1000ms, 30000ms});
  EXPECT_EQ(b.next(), 1000ms);
  EXPECT_EQ(b.next(), 2000ms);
  EXPECT_EQ(b.next(), 4000ms);
  EXPECT_EQ(b.waits(), 3);
  b.reset();
  EXPECT_EQ(b.waits(), 0);
  EXPECT_EQ(b.next(), 1000ms);
  // Two jittered backoffs with different seeds do not wait in step.
  backoff x({100ms, 1000ms, true, true}, 1), y({100ms, 1000ms, true, true}, 2);
  int same = 0;
  for (int i = 0; i < 20; ++i) {
    x.reset();
    y.reset();
    for (int k = 0; k < 4; ++k)
      same += x.next() == y.next() ? 1 : 0;
  }
  EXPECT_LT(same, 20);
}

} // namespace
