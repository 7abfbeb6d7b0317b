// A schedule's definition (src/schedule/schedule.hpp): its checks, its JSON and its slots. The
// claiming in Redis is tested in tests/integration/schedule_test.cpp.
#include "cli/ops.hpp"
#include "schedule/schedule.hpp"

#include <gtest/gtest.h>

namespace {

using forq::schedule::definition;
using std::chrono::milliseconds;

definition every(milliseconds ms) {
  definition d;
  d.name = "tick";
  d.queue = "default";
  d.every = ms;
  d.job.handler = "noop";
  return d;
}

std::string refused(const definition& d) {
  auto ok = forq::schedule::check(d);
  EXPECT_FALSE(ok);
  return ok ? "" : ok.error().message();
}

TEST(schedule_definition, intervals_are_aligned_to_the_clock_and_cron_slots_are_whole_seconds) {
  auto d = every(milliseconds(5000));
  EXPECT_EQ(forq::schedule::next_slot(d, 1'000'000'001'234), 1'000'000'005'000);
  EXPECT_EQ(forq::schedule::next_slot(d, 1'000'000'005'000), 1'000'000'010'000); // strictly after
  definition c = every(milliseconds(0));
  c.cron_text = "*/15 * * * *";
  EXPECT_EQ(forq::schedule::next_slot(c, 1'764'669'600'500), 1'764'670'500'000); // 10:00 -> 10:15
  EXPECT_EQ(forq::schedule::job_id(c, 1'764'670'500'000), "schedule:tick:1764670500000");
}

TEST(schedule_definition, its_json_reads_back_the_same) {
  auto d = every(milliseconds(0));
  d.cron_text = "0 9 * * MON-FRI";
  d.zone = "Europe/London";
  d.job.payload = R"({"report":"daily"})";
  d.job.priority = 3;
  d.job.max_attempts = 5;
  d.missed = forq::schedule::missed_policy::all;
  d.grace = milliseconds(5000);
  auto back = forq::schedule::from_json(forq::schedule::to_json(d), "default");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(forq::schedule::to_json(*back), forq::schedule::to_json(d));
  EXPECT_EQ(back->zone, "Europe/London");
  EXPECT_EQ(back->job.max_attempts, 5);
}

TEST(schedule_definition, what_cannot_run_is_refused_naming_the_part) {
  auto d = every(milliseconds(0));
  EXPECT_NE(refused(d).find("needs a cron expression or an interval, not neither"),
            std::string::npos);
  d.every = milliseconds(500);
  EXPECT_NE(refused(d).find("is not allowed: use 1s to 366d"), std::string::npos);
  d = every(milliseconds(1000));
  d.cron_text = "* * * * *";
  EXPECT_NE(refused(d).find("not both"), std::string::npos);
  d = every(milliseconds(0));
  d.cron_text = "61 * * * *";
  EXPECT_NE(refused(d).find("minute 61 is out of range"), std::string::npos);
  d.cron_text = "0 * * * *";
  d.zone = "Nowhere/City";
  EXPECT_NE(refused(d).find("time zone \"Nowhere/City\" is not known"), std::string::npos);
  d = every(milliseconds(1000));
  d.name = "bad name!";
  EXPECT_NE(refused(d).find("schedule name \"bad name!\" is not allowed"), std::string::npos);
  d = every(milliseconds(1000));
  d.job.payload = "{oops";
  EXPECT_NE(refused(d).find("payload is not JSON"), std::string::npos);
  EXPECT_FALSE(
      forq::schedule::from_json(R"({"name":"x","every_ms":1000,"missed":"never"})", "default"));
}

TEST(schedule_definition, durations_read_as_people_write_them) {
  using forq::cli::parse_duration;
  EXPECT_EQ(parse_duration("30s"), milliseconds(30000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("1d"), milliseconds(86400000));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_FALSE(parse_duration("0s"));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 m"));
  EXPECT_FALSE(parse_duration("400d"));
  EXPECT_FALSE(parse_duration("-1s"));
}

} // namespace
