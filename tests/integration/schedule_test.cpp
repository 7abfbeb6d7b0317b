// Schedules end to end (docs/schedules.md): `forq schedule` against a real Redis, and serve
// trees that tick them. One job per slot however many keepers race for it; the missed-run
// policy after everything was down.
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <sys/wait.h>
#include <thread>

namespace {

using forq::test::child_process;
using forq::test::run;
using forq::test::run_result;
using namespace std::chrono_literals;

const std::string forq_bin = FORQ_BINARY;

class schedule_test : public forq::test::redis_test {
 protected:
  run_result forq(std::vector<std::string> args) {
    args.insert(args.begin(), forq_bin);
    args.push_back("--redis");
    args.push_back(redis_.url());
    return run(args);
  }

  std::unique_ptr<child_process> serve(const std::string& data, int workers = 2) {
    std::vector<std::string> argv{forq_bin,     "serve",
                                  "--redis",    redis_.url(),
                                  "--listen",   "127.0.0.1:0",
                                  "--workers",  std::to_string(workers),
                                  "--data-dir", (dir_ / data).string()};
    auto p = std::make_unique<child_process>(argv);
    EXPECT_TRUE(p->wait_for_err("consuming")) << p->err();
    return p;
  }

  static void stop(child_process& p) {
    p.signal(SIGTERM);
    auto status = p.wait_for(20s);
    ASSERT_TRUE(status) << "forq serve did not stop";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p.err();
  }

  boost::json::array list() {
    auto r = forq({"schedule", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return boost::json::parse(r.out).as_array();
  }

  // Every job a schedule made: slot (ms) -> the entry id its marker holds.
  std::map<long long, std::string> jobs_of(const std::string& name) {
    std::map<long long, std::string> out;
    const std::string prefix = "forq:{default}:unique:schedule:" + name + ":";
    auto keys = redis_.command({"KEYS", prefix + "*"}); // "[k1, k2]"
    if (keys.size() < 2 || keys.front() != '[') return out;
    keys = keys.substr(1, keys.size() - 2);
    for (std::size_t at = 0; at < keys.size();) {
      auto comma = keys.find(", ", at);
      auto key = keys.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (key.rfind(prefix, 0) == 0)
        out[std::stoll(key.substr(prefix.size()))] = redis_.command({"GET", key});
      if (comma == std::string::npos) break;
      at = comma + 2;
    }
    return out;
  }

  std::string completed() {
    auto v = redis_.command({"HGET", "forq:{default}:stats", "completed"});
    return v == "(nil)" ? "0" : v;
  }

  forq::test::temp_dir dir_;
};

TEST_F(schedule_test, add_list_change_and_remove_through_the_cli) {
  auto added = forq(
      {"schedule", "add", "report", "--every", "1h", "--handler", "noop", R"({"kind":"hourly"})"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("schedule report of queue default: version 1, next run "),
            std::string::npos)
      << added.out;
  auto all = list();
  ASSERT_EQ(all.size(), 1u);
  auto one = all[0].as_object();
  EXPECT_EQ(one.at("name"), "report");
  EXPECT_EQ(one.at("every_ms"), 3600000);
  EXPECT_EQ(one.at("version"), 1);
  EXPECT_EQ(one.at("next_ms").as_int64() % 3600000, 0) << "an interval is aligned to the clock";

  // The same again changes nothing; a change is a new version.
  auto again = forq(
      {"schedule", "add", "report", "--every", "1h", "--handler", "noop", R"({"kind":"hourly"})"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(list()[0].at("version"), 1);
  auto changed = forq({"schedule", "add", "report", "--cron", "30 9 * * MON-FRI", "--tz",
                       "Europe/London", "--handler", "noop"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  one = list()[0].as_object();
  EXPECT_EQ(one.at("version"), 2);
  EXPECT_EQ(one.at("cron"), "30 9 * * MON-FRI");
  EXPECT_EQ(one.at("tz"), "Europe/London");

  auto removed = forq({"schedule", "remove", "report"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_TRUE(list().empty());
  auto gone = forq({"schedule", "remove", "report"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("queue default has no schedule \"report\""), std::string::npos)
      << gone.err;
  // Added again under the same name: a version it never had.
  ASSERT_EQ(forq({"schedule", "add", "report", "--every", "1h"}).exit_code, 0);
  EXPECT_EQ(list()[0].at("version"), 3);
}

TEST_F(schedule_test, bad_schedules_are_refused_naming_what_is_wrong) {
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& b : std::vector<bad>{
           {{"x", "--cron", "61 * * * *"}, "minute 61 is out of range (0 to 59)"},
           {{"x", "--cron", "0 0 30 2 *"}, "names no day that exists"},
           {{"x", "--cron", "0 * * * *", "--tz", "Mars/Olympus"}, "time zone \"Mars/Olympus\""},
           {{"x", "--every", "5"}, "--every \"5\" is not a duration"},
           {{"x", "--every", "1s", "--tz", "UTC"}, "--tz goes with --cron"},
           {{"x"}, "needs --cron EXPRESSION or --every DURATION"},
           {{"x", "--every", "1s", "{oops"}, "payload is not JSON"},
           {{"bad name!", "--every", "1s"}, "schedule name \"bad name!\" is not allowed"},
           {{"x", "--every", "1s", "--missed", "never"}, "--missed"},
       }) {
    std::vector<std::string> args{"schedule", "add"};
    args.insert(args.end(), b.args.begin(), b.args.end());
    auto r = forq(args);
    EXPECT_EQ(r.exit_code, 2) << b.says << ": " << r.err;
    EXPECT_NE(r.err.find(b.says), std::string::npos) << r.err;
  }
  EXPECT_TRUE(list().empty());
}

// Two serve trees (two workers each) on one Redis: their keepers race for every slot of a
// schedule due every second; each slot is one job, none is skipped, each ran once.
TEST_F(schedule_test, two_serve_trees_make_one_job_per_slot) {
  auto a = serve("a");
  auto b = serve("b");
  ASSERT_EQ(forq({"schedule", "add", "tick", "--every", "1s", "--handler", "noop"}).exit_code, 0);
  // Its first slot is 5 to 6 s away (schedule::look_every); then one a second.
  std::this_thread::sleep_for(11500ms);
  ASSERT_EQ(forq({"schedule", "remove", "tick"}).exit_code, 0);
  auto jobs = jobs_of("tick");
  ASSERT_GE(jobs.size(), 5u) << a->err() << b->err();
  std::vector<long long> late;
  long long previous = 0;
  for (const auto& [slot, entry] : jobs) {
    EXPECT_EQ(slot % 1000, 0);
    if (previous) {
      EXPECT_EQ(slot - previous, 1000) << "a slot without its job";
    }
    previous = slot;
    late.push_back(std::stoll(entry.substr(0, entry.find('-'))) - slot);
  }
  std::sort(late.begin(), late.end());
  std::printf("schedule every 1s, two trees: %zu slots, lateness (entry time - slot) min %lld ms, "
              "median %lld ms, max %lld ms\n",
              late.size(), late.front(), late[late.size() / 2], late.back());
  EXPECT_GE(late.front(), 0) << "run before its slot";
  EXPECT_LT(late.back(), 1000) << "a slot ran a whole interval late";
  // Each job ran once.
  auto done = [&] { return std::stoul(completed()) >= jobs.size(); };
  for (int i = 0; i < 200 && !done(); ++i)
    std::this_thread::sleep_for(25ms);
  EXPECT_EQ(std::stoul(completed()), jobs.size());
  stop(*a);
  stop(*b);
}

// A definition forq cannot read (written by hand, or by a newer forq): said once, not every
// second, and it leaves the due set instead of being looked at forever.
TEST_F(schedule_test, a_schedule_that_cannot_be_read_is_said_once_and_stops) {
  redis_.command({"HSET", "forq:{default}:schedules", "broken", R"({"name":"broken"})"});
  redis_.command({"HSET", "forq:{default}:schedule_state", "broken:version", "1"});
  redis_.command({"ZADD", "forq:{default}:schedule_due", "1", "broken"});
  auto p = serve("a", 1);
  std::this_thread::sleep_for(2500ms);
  stop(*p);
  auto log = p->err();
  auto first = log.find("schedule broken cannot be read");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("schedule broken cannot be read", first + 1), std::string::npos) << log;
  EXPECT_EQ(redis_.command({"ZSCORE", "forq:{default}:schedule_due", "broken"}), "(nil)");
}

// Everything down for a while (no worker for three or four slots), then one tree: what each
// missed-run policy does with the slots that went by.
struct after_a_stop {
  boost::json::object state;             // forq schedule list's, after the tree stopped
  std::map<long long, std::string> jobs; // slot -> entry id
  long long first_slot = 0;              // the schedule's first slot
  long long started_ms = 0;              // when the tree started (Redis's clock)
  std::string log;
};

class schedule_missed_test : public schedule_test {
 protected:
  after_a_stop run_policy(const std::string& policy) {
    after_a_stop out;
    EXPECT_EQ(
        forq({"schedule", "add", "tick", "--every", "1s", "--handler", "noop", "--missed", policy})
            .exit_code,
        0);
    out.first_slot = list().at(0).at("next_ms").as_int64();
    // No worker: the first slot comes 5 to 6 s after the add, then three or four more go by.
    std::this_thread::sleep_for(9500ms);
    out.started_ms = redis_ms();
    auto p = serve("a", 1);
    std::this_thread::sleep_for(2500ms);
    stop(*p);
    out.state = list().at(0).as_object();
    out.jobs = jobs_of("tick");
    out.log = p->err();
    long long previous = 0;
    for (const auto& [slot, entry] : out.jobs) {
      if (previous) {
        EXPECT_EQ(slot - previous, 1000) << policy << ": after the first, one job a second";
      }
      previous = slot;
    }
    EXPECT_EQ(out.state.at("runs").as_int64(), static_cast<long long>(out.jobs.size()));
    return out;
  }

  long long redis_ms() {
    auto t = redis_.command({"TIME"}); // "[seconds, microseconds]"
    auto comma = t.find(", ");
    return std::stoll(t.substr(1, comma - 1)) * 1000 + std::stoll(t.substr(comma + 2)) / 1000;
  }
};

TEST_F(schedule_missed_test, latest_runs_only_the_latest_missed_slot_then_goes_on) {
  auto r = run_policy("latest");
  ASSERT_FALSE(r.jobs.empty()) << r.log;
  EXPECT_GT(r.jobs.begin()->first, r.first_slot + 1500) << "an older missed slot ran";
  // When it ran, its slot was the latest due: it was written less than an interval after it
  // (how long the tree took to start does not matter).
  const auto& [slot, entry] = *r.jobs.begin();
  EXPECT_LT(std::stoll(entry.substr(0, entry.find('-'))) - slot, 1000)
      << "an older slot ran, not the latest";
  EXPECT_GE(r.state.at("skipped").as_int64(), 2) << boost::json::serialize(r.state);
  EXPECT_NE(r.log.find("missed"), std::string::npos) << r.log;
}

TEST_F(schedule_missed_test, skip_runs_none_of_the_missed_slots) {
  auto r = run_policy("skip");
  ASSERT_FALSE(r.jobs.empty()) << r.log;
  // The first job is a slot that came after the tree started (or under a second before).
  EXPECT_GT(r.jobs.begin()->first, r.started_ms - 1000) << "a missed slot ran";
  EXPECT_GE(r.state.at("skipped").as_int64(), 3) << boost::json::serialize(r.state);
}

TEST_F(schedule_missed_test, all_runs_every_missed_slot_oldest_first) {
  auto r = run_policy("all");
  ASSERT_FALSE(r.jobs.empty()) << r.log;
  EXPECT_EQ(r.jobs.begin()->first, r.first_slot) << "a missed slot did not run";
  EXPECT_GE(r.jobs.size(), 6u) << r.log;
  EXPECT_EQ(r.state.at("skipped").as_int64(), 0);
}

} // namespace
