// Faults in the middle of a drain (docs/reliability.md): workers killed with -9 every second,
// redis-server killed and restarted on its AOF, every client connection killed, the master
// killed with -9 and forq started again. Each test enqueues numbered jobs for the `count`
// handler of tests/chaos/chaos_worker.cpp, which appends each job's number to a file as its side
// effect, and then asserts: every job ran (nothing lost), and duplicates only as many as the
// at-least-once cases allow (a job running in a process that died, or on a connection that
// was cut before its ack reached Redis).
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sys/wait.h>
#include <thread>

namespace {

using forq::test::child_process;
using forq::test::run;
using namespace std::chrono_literals;

const std::string worker_bin = FORQ_CHAOS_WORKER;

class chaos_test : public ::testing::Test {
 protected:
  explicit chaos_test(std::vector<std::string> redis_args = {}) : redis_(std::move(redis_args)) {}

  // N jobs {"seq": first + i, "ms": ms} for `count`, in bulk through the program's own enqueue.
  void enqueue(int n, int ms, int first = 0) {
    std::string lines;
    for (int i = first; i < first + n; ++i)
      lines += "{\"seq\":" + std::to_string(i) + ",\"ms\":" + std::to_string(ms) + "}\n";
    forq::test::write_file(dir_ / "jobs.ndjson", lines);
    auto r = run({"/bin/sh", "-c",
                  worker_bin + " enqueue --redis " + redis_.url() + " --handler count < " +
                      (dir_ / "jobs.ndjson").string() + " > /dev/null"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::unique_ptr<child_process> serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{worker_bin, "serve",   "--redis",     redis_.url(),
                                  "--listen", "127.0.0.1:0", "--data-dir", (dir_ / "data").string(),
                                  "--lease",  "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<child_process>(
        argv, std::vector<std::string>{"CHAOS_LOG=" + (dir_ / "ran.log").string()});
  }

  // How many times each job ran, by the side-effect log.
  std::map<int, int> ran() const {
    std::map<int, int> counts;
    std::ifstream in(dir_ / "ran.log");
    for (int seq; in >> seq;)
      ++counts[seq];
    return counts;
  }

  // Until at least n distinct jobs ran (all of them, when n is how many were enqueued), or the
  // limit.
  bool all_ran(int n, std::chrono::milliseconds limit) const {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (static_cast<int>(ran().size()) >= n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  int duplicates() const {
    int d = 0;
    for (const auto& [seq, times] : ran())
      d += times - 1;
    return d;
  }

  std::string queue_figures() {
    return run({worker_bin, "queues", "--json", "--redis", redis_.url()}).out;
  }

  // Nothing is left ready, delayed, leased or dead.
  void expect_queue_settled() {
    auto deadline = std::chrono::steady_clock::now() + 15s;
    std::string q;
    while (std::chrono::steady_clock::now() < deadline) {
      q = queue_figures();
      if (q.find("\"ready\":0,") != std::string::npos &&
          q.find("\"active\":0,") != std::string::npos)
        break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_NE(q.find("\"ready\":0,"), std::string::npos) << q;
    EXPECT_NE(q.find("\"active\":0,"), std::string::npos) << q;
    EXPECT_NE(q.find("\"delayed\":0,"), std::string::npos) << q;
    EXPECT_NE(q.find("\"dead\":0,"), std::string::npos) << q;
  }

  static void stop(child_process& p) {
    p.signal(SIGTERM);
    auto status = p.wait_for(30s);
    ASSERT_TRUE(status) << "forq did not stop";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p.err();
  }

  static std::vector<pid_t> worker_pids(const std::string& log) {
    std::vector<pid_t> out;
    std::regex started(R"(worker \d+ started \(pid (\d+)\))");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), started);
         it != std::sregex_iterator(); ++it)
      out.push_back(std::stoi((*it)[1]));
    return out;
  }

  forq::test::temp_dir dir_;
  forq::test::redis_server redis_;
};

// The master restarts a slot that keeps dying later each time (1, 2, 4, 8 s...: no fork storm),
// so the kills stop after five and the drain is left to finish.
TEST_F(chaos_test, a_random_worker_killed_every_second_loses_nothing) {
  const int n = 100000, concurrency = 16;
  enqueue(n, 1); // 2 workers x 16 at 1 ms a job: about 3 s of work, more with the kills
  auto p = serve({"--workers", "2", "--concurrency", std::to_string(concurrency)});
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  while (static_cast<int>(ran().size()) < n && kills < 5) {
    std::this_thread::sleep_for(1s);
    if (static_cast<int>(ran().size()) >= n) break;
    // The living workers: those started, less those already gone.
    std::vector<pid_t> alive;
    for (pid_t w : worker_pids(p->err()))
      if (!forq::test::process_gone(w)) alive.push_back(w);
    if (alive.empty()) continue;
    ::kill(alive[std::uniform_int_distribution<std::size_t>(0, alive.size() - 1)(rng)], SIGKILL);
    ++kills;
  }
  ASSERT_TRUE(all_ran(n, 90s)) << ran().size() << " of " << n << " ran\n" << p->err();
  EXPECT_GE(kills, 2) << "the drain ended before the chaos began";
  // A killed worker's running jobs may have run without their ack: at most its concurrency.
  EXPECT_LE(duplicates(), kills * concurrency);
  expect_queue_settled();
  stop(*p);
  RecordProperty("kills", kills);
  RecordProperty("duplicates", duplicates());
}

class chaos_aof_test : public chaos_test {
 protected:
  chaos_aof_test() : chaos_test({"--appendonly", "yes", "--appendfsync", "always"}) {}
};

TEST_F(chaos_aof_test, redis_killed_and_restarted_on_its_aof_mid_drain_loses_nothing) {
  const int n = 10000, concurrency = 16;
  enqueue(n, 5);
  auto p = serve({"--workers", "2", "--concurrency", std::to_string(concurrency)});
  ASSERT_TRUE(all_ran(1001, 3000ms)) << p->err(); // the drain is under way
  redis_.stop(); // SIGKILL, as a crash
  std::this_thread::sleep_for(1s);
  redis_.start(); // same port, same AOF
  ASSERT_TRUE(all_ran(n, 60s)) << ran().size() << " of " << n << " ran\n" << p->err();
  // Jobs whose ack was in flight when Redis died run again: at most what was running.
  EXPECT_LE(duplicates(), 2 * concurrency);
  expect_queue_settled();
  stop(*p);
}

TEST_F(chaos_test, every_client_connection_killed_mid_drain_loses_nothing) {
  const int n = 10000, concurrency = 16;
  enqueue(n, 5);
  auto p = serve({"--workers", "2", "--concurrency", std::to_string(concurrency)});
  int cuts = 0;
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(500ms);
    EXPECT_NE(redis_.command({"CLIENT", "KILL", "TYPE", "normal"}).find_first_of("0123456789"),
              std::string::npos);
    ++cuts;
  }
  ASSERT_TRUE(all_ran(n, 60s)) << ran().size() << " of " << n << " ran\n" << p->err();
  EXPECT_LE(duplicates(), cuts * 2 * concurrency);
  expect_queue_settled();
  stop(*p);
}

TEST_F(chaos_test, the_master_killed_mid_drain_and_started_again_finishes_the_work) {
  const int n = 10000;
  enqueue(n, 5);
  auto first = serve({"--workers", "2", "--concurrency", "16"});
  ASSERT_TRUE(all_ran(1001, 3000ms)) << first->err(); // the drain is under way
  auto workers = worker_pids(first->err());
  first->signal(SIGKILL);
  first->wait_for(5s);
  for (pid_t w : workers) // they notice (parent-death signal), drain and go
    EXPECT_TRUE(forq::test::wait_process_gone(w, 15s)) << w;
  auto second = serve({"--workers", "2", "--concurrency", "16"});
  ASSERT_TRUE(all_ran(n, 60s)) << ran().size() << " of " << n << " ran\n" << second->err();
  EXPECT_LE(duplicates(), 2 * 16);
  expect_queue_settled();
  stop(*second);
}

// redis-server frozen (SIGSTOP) for longer than every timeout (a command's 5 s, a login's 3 s),
// then thawed: /readyz says 503 while it is frozen and 200 soon after, and consuming resumes
// within a couple of seconds (reconnect backoff is at most 1 s) without losing a job.
TEST_F(chaos_test, redis_frozen_past_every_timeout_then_thawed_resumes_and_readyz_follows) {
  const int n = 4000, concurrency = 16;
  enqueue(n, 5);
  auto p = serve({"--workers", "1", "--concurrency", std::to_string(concurrency)});
  ASSERT_TRUE(p->wait_for_err("master ready")) << p->err();
  int port = forq::test::listening_port(p->err());
  ASSERT_TRUE(all_ran(301, 10000ms)) << p->err(); // the drain is under way
  auto frozen_at = std::chrono::steady_clock::now();
  ::kill(redis_.pid(), SIGSTOP);
  bool went_unready = false;
  while (std::chrono::steady_clock::now() - frozen_at < 9s) {
    if (forq::test::http_call(port, "GET", "/readyz").status == 503) went_unready = true;
    std::this_thread::sleep_for(100ms);
  }
  auto ran_while_frozen = ran().size();
  ::kill(redis_.pid(), SIGCONT);
  auto thawed_at = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration to_ready{}, to_progress{};
  while (std::chrono::steady_clock::now() - thawed_at < 20s &&
         (to_ready == decltype(to_ready){} || to_progress == decltype(to_progress){})) {
    auto now = std::chrono::steady_clock::now();
    if (to_ready == decltype(to_ready){} &&
        forq::test::http_call(port, "GET", "/readyz").status == 200)
      to_ready = now - thawed_at;
    if (to_progress == decltype(to_progress){} && ran().size() > ran_while_frozen + 50)
      to_progress = now - thawed_at;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(went_unready) << "/readyz never said 503 while Redis was frozen";
  EXPECT_GT(to_ready.count(), 0) << "/readyz never came back";
  EXPECT_GT(to_progress.count(), 0) << "consuming never resumed";
  EXPECT_LT(to_ready, 3s);
  EXPECT_LT(to_progress, 3s);
  RecordProperty("ready_ms", static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(to_ready).count()));
  RecordProperty("resumed_ms", static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(to_progress).count()));
  ASSERT_TRUE(all_ran(n, 60s)) << ran().size() << " of " << n << " ran\n" << p->err();
  EXPECT_LE(duplicates(), 2 * concurrency);
  expect_queue_settled();
  stop(*p);
}

// Case 3 of the guarantee: a handler that blocks its worker's thread past the lease. Its
// renewals cannot run, so another worker takes the job back and runs it too; the blocked worker
// then carries on, and nothing else is lost or stuck.
TEST_F(chaos_test, a_handler_blocking_its_thread_past_the_lease_runs_again_and_stalls_nothing) {
  auto r = run({worker_bin, "enqueue", "--redis", redis_.url(), "--handler", "count",
                R"({"seq":0,"block_ms":3000})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  enqueue(2000, 1, 1);
  auto p = serve({"--workers", "2", "--concurrency", "8"}); // --lease 1
  ASSERT_TRUE(all_ran(2001, 60s)) << ran().size() << " of 2001 ran\n" << p->err();
  // Let the blocked attempt (if it was the first) finish too.
  std::this_thread::sleep_for(3500ms);
  auto counts = ran();
  EXPECT_GE(counts[0], 1);
  EXPECT_LE(counts[0], 2) << "run more than once per lease holder";
  // The jobs waiting on the blocked loop beside it are past their lease too: at most the
  // worker's concurrency of them may run twice as well.
  EXPECT_LE(duplicates(), counts[0] - 1 + 8);
  expect_queue_settled();
  // Both workers still consume.
  enqueue(200, 0, 5000);
  EXPECT_TRUE(all_ran(2201, 30s)) << p->err();
  stop(*p);
}

} // namespace
