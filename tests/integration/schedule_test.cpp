// Schedules end to end (docs/schedules.md): `forq schedule` against a real Redis, and serve
// trees that tick them. One job per slot however many keepers race for it; the missed-run
// policy after everything was down.
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
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

  std::unique_ptr<child_process> serve(const std::string& data, int workers = 2,
                                       const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv{forq_bin,     "serve",
                                  "--redis",    redis_.url(),
                                  "--listen",   "127.0.0.1:0",
                                  "--workers",  std::to_string(workers),
                                  "--data-dir", (dir_ / data).string()};
    argv.insert(argv.end(), more.begin(), more.end());
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

  boost::json::array list(const std::string& queue = "default") {
    auto r = forq({"schedule", "list", "--json", "--queue", queue});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return boost::json::parse(r.out).as_array();
  }

  // forq schedule list's, by name.
  std::map<std::string, boost::json::object> by_name(const std::string& queue = "default") {
    std::map<std::string, boost::json::object> out;
    for (const auto& s : list(queue))
      out[std::string(s.at("name").as_string())] = s.as_object();
    return out;
  }

  // Kill -9 a serve tree: its workers, then its master.
  static void kill_tree(child_process& p) {
    std::ifstream children("/proc/" + std::to_string(p.pid()) + "/task/" + std::to_string(p.pid()) +
                           "/children");
    for (pid_t c = 0; children >> c;)
      ::kill(c, SIGKILL);
    p.signal(SIGKILL);
    p.wait_for(10s);
  }

  // Every job a schedule's slots made: slot (ms) -> the entry id its marker holds.
  std::map<long long, std::string> jobs_of(const std::string& name) {
    std::map<long long, std::string> out;
    const std::string prefix = "forq:{default}:unique:schedule:" + name + ":";
    auto keys = redis_.command({"KEYS", prefix + "*"}); // "[k1, k2]"
    if (keys.size() < 2 || keys.front() != '[') return out;
    keys = keys.substr(1, keys.size() - 2);
    for (std::size_t at = 0; at < keys.size();) {
      auto comma = keys.find(", ", at);
      auto key = keys.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (key.rfind(prefix, 0) == 0 && key.find(":now:") == std::string::npos)
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
  EXPECT_NE(added.out.find("schedule report of queue default added: version 1, next run "),
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

long long entry_ms(const std::string& entry) {
  return std::stoll(entry.substr(0, entry.find('-')));
}

// Three serve trees (two workers each, standing in for three hosts) on one Redis: their six
// keepers race for every slot of a schedule due every second, for 20 s; each slot is one job,
// none is skipped, each ran once, and each was enqueued close to its slot.
TEST_F(schedule_test, three_serve_trees_make_one_job_per_slot_on_time) {
  auto a = serve("a");
  auto b = serve("b");
  auto c = serve("c");
  ASSERT_EQ(forq({"schedule", "add", "tick", "--every", "1s", "--handler", "noop"}).exit_code, 0);
  // Its first slot is 5 to 6 s away (schedule::look_every); then one a second for 20 s.
  std::this_thread::sleep_for(26s);
  ASSERT_EQ(forq({"schedule", "remove", "tick"}).exit_code, 0);
  auto jobs = jobs_of("tick");
  ASSERT_GE(jobs.size(), 19u) << a->err() << b->err() << c->err();
  std::vector<long long> late;
  long long previous = 0;
  for (const auto& [slot, entry] : jobs) {
    EXPECT_EQ(slot % 1000, 0);
    if (previous) {
      EXPECT_EQ(slot - previous, 1000) << "a slot without its job";
    }
    previous = slot;
    late.push_back(entry_ms(entry) - slot);
  }
  std::sort(late.begin(), late.end());
  const auto p99 = late[std::min(late.size() - 1, late.size() * 99 / 100)];
  std::printf("schedule every 1s, three trees: %zu slots, lateness (entry time - slot) min %lld "
              "ms, median %lld ms, p99 %lld ms, max %lld ms\n",
              late.size(), late.front(), late[late.size() / 2], p99, late.back());
  EXPECT_GE(late.front(), 0) << "run before its slot";
#ifdef FORQ_SANITIZED
  EXPECT_LT(p99, 500) << "late under the sanitizers, on a shared machine";
#else
  EXPECT_LE(p99, 50) << "the issue's bound: fired within 50 ms of its slot (p99)";
#endif
  // Each job ran once.
  auto done = [&] { return std::stoul(completed()) >= jobs.size(); };
  for (int i = 0; i < 200 && !done(); ++i)
    std::this_thread::sleep_for(25ms);
  EXPECT_EQ(std::stoul(completed()), jobs.size());
  stop(*a);
  stop(*b);
  stop(*c);
}

// The overlap policies with a handler (2.5 s) that outlives its interval (1 s), a limit, and a
// paused schedule, in one tree.
TEST_F(schedule_test, overlap_limit_pause_resume_and_run_do_what_they_say) {
  const std::string slow = R"({"ms":2500})";
  for (auto args : std::vector<std::vector<std::string>>{
           {"skipper", "--every", "1s", "--handler", "sleep", "--overlap", "skip", slow},
           {"queuer", "--every", "1s", "--handler", "sleep", "--overlap", "queue-one", slow},
           {"twice", "--every", "1s", "--handler", "noop", "--limit", "2"},
           {"later", "--every", "1s", "--handler", "noop", "--start", "2099-01-01T00:00:00Z"},
           {"held", "--every", "1s", "--handler", "noop"}}) {
    args.insert(args.begin(), {"schedule", "add"});
    auto r = forq(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(forq({"schedule", "pause", "held"}).exit_code, 0);
  auto p = serve("a");
  std::this_thread::sleep_for(15s); // the first slots 5 to 6 s after the adds, then 9 s more
  auto state = by_name();
  auto skipper = jobs_of("skipper"), queuer = jobs_of("queuer");
  ASSERT_EQ(forq({"schedule", "pause", "skipper"}).exit_code, 0);
  ASSERT_EQ(forq({"schedule", "pause", "queuer"}).exit_code, 0);
  stop(*p);
  const auto log = p->err();

  // skip: a slot while the previous run is running does not run; the next free slot runs on
  // time. Slots 1 s and 2 s after a run find it running, so runs are 3 s apart at least.
  ASSERT_GE(skipper.size(), 2u) << log;
  for (auto at = skipper.begin(), next = std::next(at); next != skipper.end(); ++at, ++next) {
    EXPECT_GE(next->first - at->first, 3000) << "skip ran a slot while the previous ran";
#ifdef FORQ_SANITIZED
    EXPECT_LT(entry_ms(next->second) - next->first, 1000) << "skip ran a slot late";
#else // on time though queue-one's slot waits in the same queue (the keeper's look is not late)
    EXPECT_LT(entry_ms(next->second) - next->first, 100) << "skip ran a slot late";
#endif
  }
  EXPECT_GE(state["skipper"].at("skipped_overlap").as_int64(), 2);
  EXPECT_EQ(state["skipper"].at("skipped_missed").as_int64(), 0);

  // queue-one: the slot that came while it ran waits for it to finish, then runs at once.
  ASSERT_GE(queuer.size(), 2u) << log;
  for (auto at = queuer.begin(), next = std::next(at); next != queuer.end(); ++at, ++next) {
    const auto gap = entry_ms(next->second) - entry_ms(at->second);
    EXPECT_GE(gap, 2500) << "queue-one enqueued a run while the previous ran";
    EXPECT_LE(gap, 2500 + 1500) << "queue-one's waiting run was not enqueued within a second";
  }
  EXPECT_GE(state["queuer"].at("skipped_overlap").as_int64(), 1);
  EXPECT_NE(log.find("waits for the previous run"), std::string::npos) << log;

  // A limit of 2: two runs, then it has ended.
  EXPECT_EQ(jobs_of("twice").size(), 2u);
  EXPECT_EQ(state["twice"].at("runs"), 2);
  EXPECT_EQ(state["twice"].at("state"), "ended");
  EXPECT_TRUE(state["twice"].at("next_ms").is_null());
  // A start in 2099: its first slot is then.
  EXPECT_TRUE(jobs_of("later").empty());
  EXPECT_EQ(state["later"].at("next_ms"), 4070908800000LL);

  // Paused: nothing ran and nothing is due; run makes one job now; resume makes it due again.
  EXPECT_TRUE(jobs_of("held").empty());
  EXPECT_EQ(state["held"].at("state"), "paused");
  EXPECT_TRUE(state["held"].at("next_ms").is_null());
  auto ran = forq({"schedule", "run", "held"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.out.find("job schedule:held:now:"), std::string::npos) << ran.out;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}) != "0", true);
  auto resumed = forq({"schedule", "resume", "held"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto held = by_name()["held"];
  EXPECT_EQ(held.at("state"), "active");
  EXPECT_EQ(held.at("runs"), 1);
  EXPECT_NE(std::string(held.at("last_job_id").as_string()).find("schedule:held:now:"),
            std::string::npos);
  EXPECT_FALSE(held.at("next_ms").is_null());
  for (const char* action : {"pause", "resume", "run"}) {
    auto none = forq({"schedule", action, "nobody"});
    EXPECT_EQ(none.exit_code, 1) << action;
    EXPECT_NE(none.err.find("has no schedule \"nobody\""), std::string::npos) << none.err;
  }
}

// `schedules` (here in a config file): added at start, changed and removed on SIGHUP, one log
// line each; a schedule added by hand is never touched; a bad setting is refused naming it.
TEST_F(schedule_test, the_schedules_setting_is_reconciled_at_start_and_on_sighup) {
  ASSERT_EQ(forq({"schedule", "add", "by-hand", "--every", "1h"}).exit_code, 0);
  const auto file = (dir_ / "forq.json").string();
  auto write = [&](const std::string& text) { std::ofstream(file) << text; };
  write(R"({"schedules": [
    {"name": "nightly", "cron": "0 3 * * *", "tz": "Europe/London", "handler": "noop"},
    {"queue": "reports", "name": "weekly", "cron": "0 6 * * MON"}]})");
  auto p = serve("a", 2, {"--config", file});
  ASSERT_TRUE(p->wait_for_err("schedules: added weekly")) << p->err();
  auto state = by_name();
  ASSERT_EQ(state.count("nightly"), 1u);
  EXPECT_EQ(state["nightly"].at("source"), "config");
  EXPECT_EQ(state["nightly"].at("tz"), "Europe/London");
  EXPECT_EQ(state.count("by-hand"), 1u);
  EXPECT_EQ(by_name("reports").count("weekly"), 1u);

  write(R"({"schedules": [
    {"name": "nightly", "cron": "30 3 * * *", "tz": "Europe/London", "handler": "noop"}]})");
  p->signal(SIGHUP);
  ASSERT_TRUE(p->wait_for_err("schedules: removed weekly", 30s)) << p->err();
  state = by_name();
  EXPECT_EQ(state["nightly"].at("cron"), "30 3 * * *");
  EXPECT_EQ(state["nightly"].at("version"), 2);
  EXPECT_EQ(state.count("by-hand"), 1u) << "the setting removed a schedule it did not add";
  EXPECT_TRUE(by_name("reports").empty());
  stop(*p);
  const auto log = p->err();
  for (const char* line : {"schedules: added nightly", "schedules: changed nightly"}) {
    auto at = log.find(line);
    ASSERT_NE(at, std::string::npos) << line << "\n" << log;
    EXPECT_EQ(log.find(line, at + 1), std::string::npos) << "said twice: " << line;
  }

  auto bad = run({forq_bin, "config", "--schedules", R"([{"name": "x", "cron": "0 25 * * *"}])"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("schedules[0]: schedule \"x\": hour 25"), std::string::npos) << bad.err;
}

// Two processes change one schedule at once, back and forth: every change is one version, and
// what stays is one whole definition with its own next slot.
TEST_F(schedule_test, concurrent_upserts_are_atomic) {
  std::atomic<int> changes{0};
  auto writer = [&](const std::string& every) {
    for (int i = 0; i < 8; ++i) {
      auto r = forq({"schedule", "add", "race", "--every", i % 2 ? every : "1h"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      if (r.out.find(" added:") != std::string::npos ||
          r.out.find(" changed:") != std::string::npos)
        ++changes;
    }
  };
  std::thread one(writer, "2m"), two(writer, "3m");
  one.join();
  two.join();
  auto race = by_name()["race"];
  EXPECT_EQ(race.at("version").as_int64(), changes.load());
  const auto every = race.at("every_ms").as_int64();
  EXPECT_TRUE(every == 3600000 || every == 120000 || every == 180000) << every;
  EXPECT_EQ(race.at("next_ms").as_int64() % every, 0) << "the next slot of another definition";
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
  // Still due, a minute on (a host that can read it would run it), and shown as unreadable.
  EXPECT_GT(std::stoll(redis_.command({"ZSCORE", "forq:{default}:schedule_due", "broken"})), 1);
  auto all = by_name();
  ASSERT_EQ(all.count("broken"), 1u);
  EXPECT_EQ(all["broken"].at("state"), "unreadable");
}

// A tree runs a schedule due every second, is killed (-9, workers and master) for 10 s, and
// one tree starts again: what each missed-run policy does with the slots that went by.
struct after_a_kill {
  boost::json::object state;             // forq schedule list's, after the tree stopped
  std::map<long long, std::string> jobs; // slot -> entry id, of the slots after the kill
  std::size_t before = 0;                // jobs made before the kill
  long long first_missed = 0;            // the first slot after the kill
  long long started_ms = 0;              // when the second tree started (Redis's clock)
  std::string log;
};

class schedule_missed_test : public schedule_test {
 protected:
  after_a_kill run_policy(const std::string& policy) {
    after_a_kill out;
    EXPECT_EQ(
        forq({"schedule", "add", "tick", "--every", "1s", "--handler", "noop", "--missed", policy})
            .exit_code,
        0);
    auto first = serve("a", 1);
    for (int i = 0; i < 400 && jobs_of("tick").empty(); ++i)
      std::this_thread::sleep_for(25ms);
    kill_tree(*first);
    auto before = jobs_of("tick");
    EXPECT_FALSE(before.empty()) << first->err();
    out.before = before.size();
    out.first_missed = (before.empty() ? 0 : before.rbegin()->first) + 1000;
    std::this_thread::sleep_for(10s);
    out.started_ms = redis_ms();
    auto p = serve("b", 1);
    std::this_thread::sleep_for(2500ms);
    stop(*p);
    out.state = list().at(0).as_object();
    for (const auto& [slot, entry] : jobs_of("tick"))
      if (slot >= out.first_missed) out.jobs[slot] = entry;
    out.log = p->err();
    long long previous = 0;
    for (const auto& [slot, entry] : out.jobs) {
      if (previous) {
        EXPECT_EQ(slot - previous, 1000) << policy << ": after the first, one job a second";
      }
      previous = slot;
    }
    EXPECT_EQ(out.state.at("runs").as_int64(),
              static_cast<long long>(out.before + out.jobs.size()));
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
  EXPECT_GT(r.jobs.begin()->first, r.first_missed + 5000) << "an older missed slot ran";
  // When it ran, its slot was the latest due: it was written less than an interval after it
  // (how long the tree took to start does not matter).
  const auto& [slot, entry] = *r.jobs.begin();
  EXPECT_LT(entry_ms(entry) - slot, 1000) << "an older slot ran, not the latest";
  EXPECT_GE(r.state.at("skipped_missed").as_int64(), 8) << boost::json::serialize(r.state);
  EXPECT_NE(r.log.find("missed"), std::string::npos) << r.log;
}

TEST_F(schedule_missed_test, skip_runs_none_of_the_missed_slots) {
  auto r = run_policy("skip");
  ASSERT_FALSE(r.jobs.empty()) << r.log;
  // The first job is a slot that came after the tree started (or under a second before).
  EXPECT_GT(r.jobs.begin()->first, r.started_ms - 1000) << "a missed slot ran";
  EXPECT_GE(r.state.at("skipped_missed").as_int64(), 9) << boost::json::serialize(r.state);
}

TEST_F(schedule_missed_test, all_runs_every_missed_slot_oldest_first) {
  auto r = run_policy("all");
  ASSERT_FALSE(r.jobs.empty()) << r.log;
  EXPECT_EQ(r.jobs.begin()->first, r.first_missed) << "a missed slot did not run";
  EXPECT_GE(r.jobs.size(), 11u) << r.log;
  EXPECT_EQ(r.state.at("skipped").as_int64(), 0);
}

} // namespace

namespace {

// A reload replaces every worker; the keeper's role passes on as its holder starts draining
// (it gives the role up; the others look five times a second), so a schedule every second with
// missed = skip (a slot runs only if at most a second late) loses no slot across two SIGHUPs.
TEST_F(schedule_test, a_reload_keeps_every_slot_of_a_schedule_every_second) {
  ASSERT_EQ(
      forq({"schedule", "add", "tick", "--every", "1s", "--missed", "skip", "--handler", "noop"})
          .exit_code,
      0);
  auto p = serve("a", 2);
  // Its first slot is at least 5 s after the add (docs/schedules.md).
  for (int i = 0; i < 100 && jobs_of("tick").empty(); ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_FALSE(jobs_of("tick").empty()) << p->err();
  std::this_thread::sleep_for(2500ms);
  p->signal(SIGHUP);
  std::this_thread::sleep_for(2500ms);
  p->signal(SIGHUP);
  std::this_thread::sleep_for(2500ms);
  stop(*p);
  auto state = by_name();
  ASSERT_EQ(state.count("tick"), 1u);
  EXPECT_EQ(state["tick"].at("skipped_missed").as_int64(), 0)
      << boost::json::serialize(state["tick"]) << "\n"
      << p->err();
  // Every slot from the first to the last has its job.
  auto jobs = jobs_of("tick");
  ASSERT_GE(jobs.size(), 6u) << p->err();
  const auto first = jobs.begin()->first, last = jobs.rbegin()->first;
  EXPECT_EQ(static_cast<long long>(jobs.size()), (last - first) / 1000 + 1)
      << "slots from " << first << " to " << last << ": " << jobs.size() << "\n"
      << p->err();
}

} // namespace
