#pragma once

// The chaos tests' fixture (chaos_test.cpp, sentinel_test.cpp): numbered jobs for the `count`
// handler of chaos_worker.cpp, whose side-effect log says which ran and how often.
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sys/wait.h>
#include <thread>

namespace forq::test::chaos {

using forq::test::child_process;
using forq::test::run;
using namespace std::chrono_literals;

inline const std::string worker_bin = FORQ_CHAOS_WORKER;

class chaos_test : public ::testing::Test {
 protected:
  explicit chaos_test(std::vector<std::string> redis_args = {})
      : redis_(std::move(redis_args)) {}

  // Every test's count of jobs run and of second runs, in the test report (--gtest_output=xml,
  // ctest --output-junit): the duplicates the at-least-once cases allowed, counted.
  void TearDown() override {
    auto counts = ran();
    RecordProperty("jobs_ran", static_cast<int>(counts.size()));
    RecordProperty("duplicates", duplicates(counts));
  }

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

  // forq with a 1 s lease (unless `extra` sets one), its data in dir_/<data>.
  std::unique_ptr<child_process> serve(std::vector<std::string> extra = {},
                                       const std::string& data = "data") {
    std::vector<std::string> argv{
        worker_bin, "serve",       "--redis",    forq_redis_.empty() ? redis_.url() : forq_redis_,
        "--listen", "127.0.0.1:0", "--data-dir", (dir_ / data).string()};
    if (std::find(extra.begin(), extra.end(), "--lease") == extra.end())
      argv.insert(argv.end(), {"--lease", "1"});
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

  static int duplicates(const std::map<int, int>& counts) {
    int d = 0;
    for (const auto& [seq, times] : counts)
      d += times - 1;
    return d;
  }
  int duplicates() const { return duplicates(ran()); }

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

  // Whether /readyz answered 503 at least once in the next `d`.
  static bool unready_within(int port, std::chrono::milliseconds d) {
    bool seen = false;
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (forq::test::http_call(port, "GET", "/readyz").status == 503) seen = true;
      std::this_thread::sleep_for(100ms);
    }
    return seen;
  }

  // Polls /readyz until its status satisfies `want`: how long that took, or nothing within
  // `limit`.
  static std::optional<std::chrono::milliseconds>
  readyz_until(int port, const std::function<bool(int)>& want, std::chrono::milliseconds limit) {
    auto from = std::chrono::steady_clock::now();
    for (;;) {
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - from);
      if (want(forq::test::http_call(port, "GET", "/readyz").status)) return took;
      if (took >= limit) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
  }
  static bool is_ready(int status) { return status == 200; }

  // After a fault ends: how long until /readyz says 200, and until 50 more jobs have run than
  // `ran_before` (zero: not within 20 s). Both are recorded as test properties.
  struct recovery {
    std::chrono::milliseconds to_ready{0}, to_progress{0};
  };
  recovery recover(int port, std::size_t ran_before) {
    auto from = std::chrono::steady_clock::now();
    recovery r;
    auto since = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - from);
    };
    while (since() < 20s && (r.to_ready == 0ms || r.to_progress == 0ms)) {
      if (r.to_ready == 0ms && forq::test::http_call(port, "GET", "/readyz").status == 200)
        r.to_ready = std::max(since(), 1ms);
      if (r.to_progress == 0ms && ran().size() > ran_before + 50)
        r.to_progress = std::max(since(), 1ms);
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_GT(r.to_ready, 0ms) << "/readyz never came back";
    EXPECT_GT(r.to_progress, 0ms) << "consuming never resumed";
    RecordProperty("ready_ms", static_cast<int>(r.to_ready.count()));
    RecordProperty("resumed_ms", static_cast<int>(r.to_progress.count()));
    return r;
  }

  // A fault for 9 s in the middle of a drain (4,000 jobs of 5 ms on one worker x 16): `begin`
  // once the drain is under way, /readyz must say 503 meanwhile, then `end`. Afterwards every
  // job runs, at most the running ones twice (acks lost with the connections, on either side
  // of the fault), and the queue settles. `r`: how quickly forq recovered after `end`.
  void fault_mid_drain(const std::function<void()>& begin, const std::function<void()>& end,
                       recovery& r) {
    const int n = 4000, concurrency = 16;
    enqueue(n, 5);
    auto p = serve({"--workers", "1", "--concurrency", std::to_string(concurrency)});
    ASSERT_TRUE(p->wait_for_err("master ready")) << p->err();
    int port = forq::test::listening_port(p->err());
    ASSERT_TRUE(all_ran(301, 10000ms)) << p->err(); // the drain is under way
    begin();
    EXPECT_TRUE(unready_within(port, 9s)) << "/readyz never said 503 during the fault";
    auto ran_during = ran().size();
    end();
    r = recover(port, ran_during);
    ASSERT_TRUE(all_ran(n, 60s)) << ran().size() << " of " << n << " ran\n" << p->err();
    EXPECT_LE(duplicates(), 2 * concurrency);
    expect_queue_settled();
    stop(*p);
  }

  static void stop(child_process& p) {
    p.signal(SIGTERM);
    auto status = p.wait_for(30s);
    ASSERT_TRUE(status) << "forq did not stop\n" << p.err();
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
  std::string forq_redis_; // where serve() points forq, when not straight at redis_
};

} // namespace forq::test::chaos
