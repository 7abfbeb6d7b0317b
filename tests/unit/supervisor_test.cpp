// The master's slot table (src/master/supervisor.hpp): the decisions serve.cpp acts on, without
// processes or timers. Issue 14: crash-loop backoff, the fatal exit code, retiring (TTOU, a
// reload), and stopping.
#include "exit_codes.hpp"
#include "master/supervisor.hpp"

#include <gtest/gtest.h>

namespace {

using namespace forq::master;
using namespace std::chrono_literals;
using kind = exit_decision::kind;

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

TEST(supervisor, a_worker_in_a_crash_loop_waits_longer_each_time_up_to_30_s) {
  slot_table t;
  auto& s = t.add();
  EXPECT_EQ(s.number, 1u);
  EXPECT_EQ(s.state, slot_state::waiting);
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 8; ++i) {
    t.started(s, 100 + i, t0);
    EXPECT_EQ(s.state, slot_state::running);
    auto d = t.exited(s, false, 50ms, false);
    EXPECT_EQ(d.what, kind::restart);
    EXPECT_EQ(s.state, slot_state::waiting);
    EXPECT_EQ(s.pid, -1);
    waits.push_back(d.delay);
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s}));
  // One that ran a good while is replaced at once, and its backoff starts again.
  t.started(s, 200, t0);
  EXPECT_EQ(t.exited(s, false, 61s, false).delay, 100ms);
  t.started(s, 201, t0);
  EXPECT_EQ(t.exited(s, false, 50ms, false).delay, 1s);
}

TEST(supervisor, the_fatal_exit_code_stops_forq_instead_of_a_restart) {
  slot_table t;
  auto& s = t.add();
  t.started(s, 10, t0);
  auto d = t.exited(s, true, 10ms, false);
  EXPECT_EQ(d.what, kind::stop_forq);
  EXPECT_EQ(d.exit_code, forq::exit_code::fatal);
  // While stopping, an exit (fatal or not) is only noted.
  auto& other = t.add();
  t.started(other, 11, t0);
  EXPECT_EQ(t.exited(other, true, 10ms, true).what, kind::none);
  EXPECT_TRUE(t.none_with_process());
}

TEST(supervisor, ttou_retires_the_newest_never_the_last_and_a_retired_slot_is_forgotten) {
  slot_table t;
  for (int i = 0; i < 3; ++i)
    t.started(t.add(), 20 + i, t0);
  EXPECT_EQ(t.live(), 3u);
  auto* r = t.retire_newest();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->number, 3u);
  EXPECT_EQ(t.live(), 2u);
  EXPECT_EQ(t.with_process(), 3u); // still draining until it exits
  t.draining(*r);
  EXPECT_EQ(r->state, slot_state::draining);
  EXPECT_EQ(t.exited(*r, false, 1s, false).what, kind::forget);
  EXPECT_EQ(t.find(3), nullptr);
  EXPECT_EQ(t.slots().size(), 2u);
  EXPECT_NE(t.retire_newest(), nullptr);
  EXPECT_EQ(t.retire_newest(), nullptr) << "the last worker is kept";
  EXPECT_EQ(t.live(), 1u);
  // Numbers are never reused: a new slot after TTOU is 4.
  EXPECT_EQ(t.add().number, 4u);
}

TEST(supervisor, ttou_during_a_reload_counts_the_replacement_not_the_one_it_replaces) {
  // A reload starts the new worker first, then retires the old one: TTOU in between retires the
  // newest live slot, and the old one is retired by number all the same.
  slot_table t;
  t.started(t.add(), 30, t0); // 1
  t.started(t.add(), 31, t0); // 2
  t.started(t.add(), 32, t0); // 3: the replacement of 1
  auto* ttou = t.retire_newest();
  ASSERT_NE(ttou, nullptr);
  EXPECT_EQ(ttou->number, 3u);
  auto* old = t.retire(1);
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(t.live(), 1u);
  EXPECT_EQ(t.retire(1), nullptr) << "retired once";
  EXPECT_EQ(t.exited(*old, false, 1s, false).what, kind::forget);
  EXPECT_EQ(t.slots().size(), 2u);
}

TEST(supervisor, a_second_stop_signal_reaches_every_process_still_there) {
  slot_table t;
  for (int i = 0; i < 2; ++i)
    t.started(t.add(), 40 + i, t0);
  for (auto& s : t.slots())
    t.draining(s); // TERM
  EXPECT_EQ(t.with_process(), 2u);
  (void)t.exited(t.slots()[0], false, 1s, true);
  EXPECT_EQ(t.with_process(), 1u); // a second INT (QUIT) goes to the one left
  EXPECT_FALSE(t.none_with_process());
  (void)t.exited(t.slots()[1], false, 1s, true);
  EXPECT_TRUE(t.none_with_process());
  EXPECT_EQ(say_delay(100ms), "100 ms");
  EXPECT_EQ(say_delay(4s), "4 s");
}

} // namespace
