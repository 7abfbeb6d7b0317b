// Cron expressions and when they fire (src/schedule/cron.hpp): parsing and its refusals, the
// next instant in UTC, and fixed tables across the DST changes of America/New_York,
// Europe/London and Australia/Lord_Howe (a 30-minute shift). The croniter oracle
// (tests/schedule/cron_oracle.py) checks thousands of random expressions in UTC besides.
#include "schedule/cron.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <date/date.h>
#include <string>
#include <vector>

namespace {

using forq::schedule::next_after;
using forq::schedule::parse_cron;
using forq::schedule::sys_seconds;

sys_seconds at(const std::string& iso) { // "2026-03-08T06:00:00" (UTC)
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  EXPECT_EQ(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &se), 6) << iso;
  auto day = date::sys_days(date::year(y) / mo / d);
  return sys_seconds(day.time_since_epoch() + std::chrono::hours(h) + std::chrono::minutes(mi) +
                     std::chrono::seconds(se));
}

std::string iso(sys_seconds t) {
  return date::format("%FT%TZ", date::sys_seconds(t.time_since_epoch()));
}

// The next `n` instants after `from` (UTC), in `zone` (empty: UTC), as ISO text.
std::vector<std::string> fires(const std::string& expr, const std::string& from, int n,
                               const std::string& zone = "") {
  auto c = parse_cron(expr);
  EXPECT_TRUE(c) << expr << ": " << (c ? "" : c.error().message());
  if (!c) return {};
  const date::time_zone* z = nullptr;
  if (!zone.empty()) {
    auto found = forq::schedule::find_zone(zone);
    EXPECT_TRUE(found) << zone;
    if (!found) return {};
    z = *found;
  }
  std::vector<std::string> out;
  auto t = at(from);
  for (int i = 0; i < n; ++i) {
    auto next = next_after(*c, t, z);
    if (!next) break;
    out.push_back(iso(*next));
    t = *next;
  }
  return out;
}

std::string refused(const std::string& expr) {
  auto c = parse_cron(expr);
  EXPECT_FALSE(c) << expr << " was accepted";
  if (c) return {};
  EXPECT_EQ(c.error(), forq::errc::invalid_value);
  return c.error().message();
}

using list = std::vector<std::string>;

TEST(cron, fields_lists_ranges_steps_and_names) {
  EXPECT_EQ(fires("*/15 * * * *", "2026-12-02T10:07:30", 3),
            (list{"2026-12-02T10:15:00Z", "2026-12-02T10:30:00Z", "2026-12-02T10:45:00Z"}));
  // Friday 4 December 2026 at 10:00: the next weekday mornings are Monday's and Tuesday's.
  EXPECT_EQ(fires("0 9 * * MON-FRI", "2026-12-04T10:00:00", 2),
            (list{"2026-12-07T09:00:00Z", "2026-12-08T09:00:00Z"}));
  EXPECT_EQ(fires("5,35 8-9 * jan,Dec SUN", "2026-12-05T00:00:00", 3),
            (list{"2026-12-06T08:05:00Z", "2026-12-06T08:35:00Z", "2026-12-06T09:05:00Z"}));
  EXPECT_EQ(fires("10/20 * * * *", "2026-12-02T10:00:00", 3), // 10 to 59 by 20
            (list{"2026-12-02T10:10:00Z", "2026-12-02T10:30:00Z", "2026-12-02T10:50:00Z"}));
  EXPECT_EQ(fires("0 0 * * 7", "2026-12-02T00:00:00", 1), (list{"2026-12-06T00:00:00Z"}));
  EXPECT_EQ(fires("0 0 * * SAT-SUN", "2026-12-02T00:00:00", 3), // Sunday ends a range as 7
            (list{"2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z", "2026-12-12T00:00:00Z"}));
}

TEST(cron, six_fields_put_seconds_first_and_macros_expand) {
  EXPECT_EQ(fires("*/20 * * * * *", "2026-12-02T10:00:05", 3),
            (list{"2026-12-02T10:00:20Z", "2026-12-02T10:00:40Z", "2026-12-02T10:01:00Z"}));
  EXPECT_EQ(fires("@hourly", "2026-12-02T10:00:00", 1), (list{"2026-12-02T11:00:00Z"}));
  EXPECT_EQ(fires("@daily", "2026-12-02T10:00:00", 1), (list{"2026-12-03T00:00:00Z"}));
  EXPECT_EQ(fires("@weekly", "2026-12-02T10:00:00", 1), (list{"2026-12-06T00:00:00Z"}));
  EXPECT_EQ(fires("@monthly", "2026-12-02T10:00:00", 1), (list{"2027-01-01T00:00:00Z"}));
  EXPECT_EQ(fires("@annually", "2026-12-02T10:00:00", 1), (list{"2027-01-01T00:00:00Z"}));
}

TEST(cron, both_day_fields_restricted_means_either_and_leap_days_wait_for_their_year) {
  // The 13th, or any Friday: Friday 4, Sunday 13, Friday 18 December 2026.
  EXPECT_EQ(fires("0 0 13 * FRI", "2026-12-02T00:00:00", 3),
            (list{"2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z"}));
  // A day field that allows every value restricts nothing (as croniter reads it).
  EXPECT_EQ(fires("0 0 1-31 * FRI", "2026-12-02T00:00:00", 2),
            (list{"2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z"}));
  EXPECT_EQ(fires("0 12 29 2 *", "2026-03-01T00:00:00", 1), (list{"2028-02-29T12:00:00Z"}));
}

TEST(cron, bad_expressions_are_refused_naming_the_field_and_value) {
  EXPECT_NE(refused("61 * * * *").find("minute 61 is out of range (0 to 59)"), std::string::npos);
  EXPECT_NE(refused("* 24 * * *").find("hour 24 is out of range"), std::string::npos);
  EXPECT_NE(refused("* * * *").find("has 4"), std::string::npos);
  EXPECT_NE(refused("* * * * * * *").find("has 7"), std::string::npos);
  EXPECT_NE(refused("* * * FOO *").find("\"FOO\" is not a month"), std::string::npos);
  EXPECT_NE(refused("*/0 * * * *").find("minute step \"0\""), std::string::npos);
  EXPECT_NE(refused("5-1 * * * *").find("runs backwards"), std::string::npos);
  EXPECT_NE(refused("0 0 * * SUN-SAT,FRI-MON").find("day of week range FRI-MON runs backwards"),
            std::string::npos);
  EXPECT_NE(refused("0 0 30 2 *").find("names no day that exists"), std::string::npos);
  EXPECT_NE(refused("@reboot").find("not a cron macro"), std::string::npos);
  EXPECT_NE(refused("1,,2 * * * *").find("empty list item"), std::string::npos);
  EXPECT_NE(refused("0 0 0 * *").find("day of month 0 is out of range (1 to 31)"),
            std::string::npos);
  auto zone = forq::schedule::find_zone("Mars/Olympus_Mons");
  ASSERT_FALSE(zone);
  EXPECT_NE(zone.error().message().find("time zone \"Mars/Olympus_Mons\" is not known"),
            std::string::npos);
}

// New York: 8 March 2026 the clocks go from 02:00 EST to 03:00 EDT (07:00 UTC); 1 November 2026
// from 02:00 EDT back to 01:00 EST (06:00 UTC).
TEST(cron_dst, new_york_a_skipped_time_runs_at_the_jump_and_a_repeated_one_once) {
  const std::string ny = "America/New_York";
  // 02:30 does not exist on 8 March: at 03:00 EDT; then at 02:30 EDT as usual.
  EXPECT_EQ(fires("30 2 * * *", "2026-03-07T12:00:00", 3, ny),
            (list{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"}));
  // 01:30 happens twice on 1 November: once, the first time (EDT).
  EXPECT_EQ(fires("30 1 * * *", "2026-10-31T12:00:00", 3, ny),
            (list{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"}));
  // Every hour: every real 'half past', none in the hour that does not exist, two in the one
  // that happens twice.
  EXPECT_EQ(fires("30 * * * *", "2026-03-08T06:00:00", 2, ny),
            (list{"2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z"})); // 01:30 EST, 03:30 EDT
  EXPECT_EQ(fires("30 * * * *", "2026-11-01T05:00:00", 3, ny),
            (list{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z"}));
  // Days are local days: midnight in New York.
  EXPECT_EQ(fires("0 0 * * *", "2026-03-07T12:00:00", 2, ny),
            (list{"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"}));
}

// London: 29 March 2026 01:00 GMT -> 02:00 BST (01:00 UTC); 25 October 2026 02:00 BST -> 01:00
// GMT (01:00 UTC).
TEST(cron_dst, london) {
  const std::string london = "Europe/London";
  EXPECT_EQ(fires("30 1 * * *", "2026-03-28T12:00:00", 2, london),
            (list{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}));
  EXPECT_EQ(fires("30 1 * * *", "2026-10-24T12:00:00", 2, london),
            (list{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}));
  EXPECT_EQ(fires("*/30 * * * *", "2026-10-25T00:00:00", 4, london),
            (list{"2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z",
                  "2026-10-25T02:00:00Z"}));
}

// Lord Howe moves by 30 minutes: 4 October 2026 02:00 (+10:30) -> 02:30 (+11:00) at 15:30 UTC
// the day before; 5 April 2026 02:00 (+11:00) -> 01:30 (+10:30) at 15:00 UTC the day before.
TEST(cron_dst, lord_howe_half_hour_shift) {
  const std::string lh = "Australia/Lord_Howe";
  // 02:15 does not exist on 4 October: at the jump, 02:30 local.
  EXPECT_EQ(fires("15 2 * * *", "2026-10-03T00:00:00", 2, lh),
            (list{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}));
  // 01:45 happens twice on 5 April: the first (+11:00) only.
  EXPECT_EQ(fires("45 1 * * *", "2026-04-04T00:00:00", 2, lh),
            (list{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}));
  // Every quarter hour: 01:45 (+11), then 01:30 and 01:45 again (+10:30), then 02:00.
  EXPECT_EQ(fires("*/15 * * * *", "2026-04-04T14:40:00", 4, lh),
            (list{"2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:15:00Z",
                  "2026-04-04T15:30:00Z"}));
}

} // namespace
