// The consumer's fetching decisions (src/queue/fetch_plan.hpp), state in, one step out.
#include "queue/fetch_plan.hpp"

#include <gtest/gtest.h>

namespace {

using forq::queue::fetch_step;
using forq::queue::fetch_view;
using forq::queue::plan_fetch;
using forq::queue::plan_read;
using forq::queue::settle_read;
using kind = fetch_step::kind;

fetch_view ready_to_fetch() {
  fetch_view v;
  v.room = 64;
  return v;
}

TEST(fetch_plan, an_empty_consumer_with_room_fetches_and_stops_when_told) {
  auto v = ready_to_fetch();
  EXPECT_EQ(plan_fetch(v).what, kind::fetch);
  v.stopping = true;
  EXPECT_EQ(plan_fetch(v).what, kind::stop);
  v.waiting = 3; // even with jobs waiting: the loop's end hands them back
  EXPECT_EQ(plan_fetch(v).what, kind::stop);
}

TEST(fetch_plan, waiting_jobs_start_when_there_is_room_and_higher_priorities_go_first) {
  auto v = ready_to_fetch();
  v.waiting = 5;
  v.waiting_priority = 3;
  auto s = plan_fetch(v);
  EXPECT_EQ(s.what, kind::start_waiting);
  EXPECT_EQ(s.higher_streams, 0u); // one priority in use: nothing to look at first
  v.exact = true;                  // several priorities had jobs lately
  s = plan_fetch(v);
  EXPECT_EQ(s.what, kind::start_waiting);
  EXPECT_EQ(s.higher_streams, 6u); // priorities 9 to 4
  v.waiting_priority = 9;
  EXPECT_EQ(plan_fetch(v).higher_streams, 0u); // nothing is higher
  v.waiting_priority = 3;
  v.rate_limited = true; // its permits cover the waiting jobs only
  EXPECT_EQ(plan_fetch(v).higher_streams, 0u);
}

TEST(fetch_plan, waiting_jobs_are_looked_at_for_a_pause_and_handed_back_when_paused) {
  auto v = ready_to_fetch();
  v.waiting = 5;
  v.pause_look_due = true;
  EXPECT_EQ(plan_fetch(v).what, kind::look_at_pause);
  v.pause_look_due = false;
  v.paused = true;
  EXPECT_EQ(plan_fetch(v).what, kind::hand_back_waiting);
}

TEST(fetch_plan, with_no_room_or_jobs_that_cannot_start_it_waits_for_a_slot) {
  auto v = ready_to_fetch();
  v.room = 0;
  auto s = plan_fetch(v);
  EXPECT_EQ(s.what, kind::wait_for_slot);
  EXPECT_FALSE(s.hungry); // nothing waiting, and the last fetch was not full
  v.last_full = true;
  EXPECT_TRUE(plan_fetch(v).hungry); // more is likely waiting in Redis: claim a share
  v.last_full = false;
  v.waiting = 2;
  EXPECT_TRUE(plan_fetch(v).hungry);
  v.paused = true; // no room: the pause is looked at once a slot frees
  EXPECT_EQ(plan_fetch(v).what, kind::wait_for_slot);
}

TEST(fetch_plan, a_pause_is_looked_at_before_fetching_except_right_after_an_idle_wait) {
  auto v = ready_to_fetch();
  v.pause_look_due = true;
  EXPECT_EQ(plan_fetch(v).what, kind::look_at_pause);
  v.idle = true; // the last wait brought nothing: what the next brings is looked at then
  EXPECT_EQ(plan_fetch(v).what, kind::fetch);
  v.paused = true; // a paused queue waits for its doorbell, which looks first
  EXPECT_EQ(plan_fetch(v).what, kind::wait_paused);
  v.pause_look_due = false;
  EXPECT_EQ(plan_fetch(v).what, kind::wait_paused);
  v.idle = false;
  EXPECT_EQ(plan_fetch(v).what, kind::wait_paused);
}

TEST(fetch_plan,
     a_read_is_plain_and_blocking_unless_priorities_mix_a_limit_applies_or_slots_are_held) {
  auto v = ready_to_fetch();
  auto r = plan_read(v, 64, false);
  EXPECT_FALSE(r.exact_first);
  EXPECT_FALSE(r.give_back_if_empty);
  EXPECT_EQ(r.count, 64u);
  EXPECT_TRUE(r.block);

  v.exact = true;
  r = plan_read(v, 64, false);
  EXPECT_TRUE(r.exact_first);
  EXPECT_FALSE(r.give_back_if_empty);
  EXPECT_EQ(r.count, 1u); // after an exact read found nothing: one per stream, to wait on

  v.exact = false;
  v.rate_limited = true;
  r = plan_read(v, 10, false);
  EXPECT_TRUE(r.exact_first);
  EXPECT_TRUE(r.give_back_if_empty); // permits are not held through a wait
  EXPECT_EQ(r.count, 1u);

  v.rate_limited = false;
  v.last_full = true;
  EXPECT_TRUE(plan_read(v, 64, false).block); // alone: the slots are all its own
  EXPECT_FALSE(plan_read(v, 64, true).block); // shares them after a full fetch: no wait
}

TEST(fetch_plan, after_a_read_unused_permits_go_back_and_a_limit_s_surplus_is_handed_back) {
  auto o = settle_read(3, 10, false);
  EXPECT_EQ(o.keep, 3u);
  EXPECT_EQ(o.give_back, 7u);
  EXPECT_EQ(o.hand_back, 0u);
  EXPECT_FALSE(o.full);

  o = settle_read(12, 10, false); // a plain read over several priorities: all kept, leased
  EXPECT_EQ(o.keep, 12u);
  EXPECT_EQ(o.hand_back, 0u);
  EXPECT_TRUE(o.full);

  o = settle_read(12, 10, true); // rate-limited: only what the permits cover
  EXPECT_EQ(o.keep, 10u);
  EXPECT_EQ(o.hand_back, 2u);
  EXPECT_EQ(o.give_back, 0u);
  EXPECT_TRUE(o.full);
}

} // namespace
