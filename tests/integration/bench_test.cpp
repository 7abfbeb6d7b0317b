// `forq bench` as a user runs it (the real binary, its own embedded Redis, or --redis): each
// workload completes, verifies every job, and reports the figures it promises.
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

namespace {

using forq::test::run;
using namespace std::chrono_literals;
const std::string forq_bin = FORQ_BINARY;

boost::json::object bench_json(std::vector<std::string> args) {
  args.insert(args.begin(), {forq_bin, "bench"});
  args.push_back("--json");
  auto r = run(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.out, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not JSON: " << r.out << r.err;
    return {};
  }
  return v.as_object();
}

double median(const boost::json::object& o, const char* key) {
  return o.at("summary").at(key).at("median").to_number<double>();
}

TEST(bench_test, drain_on_its_own_embedded_redis_verifies_every_job_and_reports_figures) {
  auto o = bench_json({"drain", "--jobs", "3000", "--workers", "2", "--repeat", "2"});
  ASSERT_FALSE(o.empty());
  EXPECT_EQ(o.at("verified"), true);
  EXPECT_EQ(o.at("workers"), 2);
  ASSERT_EQ(o.at("runs").as_array().size(), 2u);
  for (const auto& r : o.at("runs").as_array()) {
    EXPECT_EQ(r.at("completed"), 3000);
    EXPECT_EQ(r.at("lost"), 0);
    EXPECT_EQ(r.at("duplicated"), 0);
  }
  EXPECT_GT(median(o, "jobs_per_s"), 0);
  EXPECT_GT(median(o, "redis_cmds_per_job"), 0.5); // at least the XADD: Redis was measured
  EXPECT_GT(median(o, "redis_cpu_us_per_job"), 0);
  EXPECT_GT(median(o, "rss_mb_per_worker"), 1); // the workers were found and read
  EXPECT_LE(median(o, "pickup_us_p50"), median(o, "pickup_us_p99"));
  EXPECT_LE(median(o, "pickup_us_p99"), median(o, "pickup_us_max"));
}

class bench_redis_test : public forq::test::redis_test {};

TEST_F(bench_redis_test, steady_and_mixed_against_a_given_redis_leave_it_clean) {
  auto steady = bench_json(
      {"steady", "--rate", "500", "--duration", "1", "--workers", "1", "--redis", redis_.url()});
  ASSERT_FALSE(steady.empty());
  EXPECT_EQ(steady.at("verified"), true);
  EXPECT_EQ(steady.at("jobs"), 500);
  EXPECT_GT(median(steady, "pickup_us_p50"), 0);
  // The producer kept its rate (within a loaded machine's reason).
  EXPECT_GT(steady.at("runs").as_array()[0].at("offered_jobs_per_s").to_number<double>(), 300);

  auto mixed = bench_json(
      {"mixed", "--rate", "1000", "--duration", "1", "--workers", "1", "--redis", redis_.url()});
  ASSERT_FALSE(mixed.empty());
  EXPECT_EQ(mixed.at("verified"), true);
  const auto& r = mixed.at("runs").as_array()[0];
  EXPECT_EQ(r.at("completed"), 1000);
  EXPECT_GT(r.at("injected_failures").to_number<double>(), 0); // ~5%: retried, then completed
  EXPECT_EQ(r.at("attempts").to_number<double>(),
            1000 + r.at("injected_failures").to_number<double>());
  EXPECT_GT(median(mixed, "run_us_p99"), 900); // 10% of jobs sleep 1 ms
  // Nothing of the bench's queues is left behind.
  EXPECT_EQ(redis_.command({"KEYS", "forq:*"}), "[]");
}

// forq bench idle measures queues with nothing to do, from two serve trees at once, and leaves
// the Redis it was given as it found it.
TEST_F(bench_redis_test, idle_measures_queues_with_nothing_to_do_and_leaves_redis_clean) {
  auto o = bench_json({"idle", "--queue-count", "4", "--hosts", "2", "--workers", "1", "--duration",
                       "3", "--redis", redis_.url()});
  ASSERT_FALSE(o.empty());
  EXPECT_EQ(o.at("queues"), 4);
  EXPECT_EQ(o.at("hosts"), 2);
  auto per = o.at("redis_commands_per_s_per_queue_per_host").to_number<double>();
  auto total = o.at("redis_commands_per_s").to_number<double>();
  EXPECT_NEAR(total, per * 8, 0.01);
  // Each consumer waits 30 s at a time inside Redis: at most one XREADGROUP each in 3 s.
  const auto& by = o.at("by_command_per_s").as_object();
  EXPECT_LE(by.contains("xreadgroup") ? by.at("xreadgroup").to_number<double>() : 0, 8 / 3.0) << o;
  EXPECT_LT(per, 1.0) << o; // issue 16's target; before it, about 30
  // No XPENDING of its own (tidying all ten streams was one each): only the one beside each
  // stall look's XAUTOCLAIM, which asks whether a lease is about to run out.
  auto rate = [&](const char* name) {
    return by.contains(name) ? by.at(name).to_number<double>() : 0.0;
  };
  EXPECT_LE(rate("xpending"), rate("xautoclaim")) << o;
  EXPECT_EQ(redis_.command({"KEYS", "forq:*"}), "[]");
}

// A bench killed with -9 takes its serve tree (and its Redis) with it: nothing is left running.
TEST(bench_test, a_killed_bench_leaves_no_process_behind) {
  forq::test::child_process b({forq_bin, "bench", "steady", "--rate", "100", "--duration", "60",
                               "--workers", "1", "--drain-timeout", "1"});
  std::vector<pid_t> tree;
  for (int i = 0; i < 500 && tree.size() < 3; ++i) { // Redis, the serve child, its worker
    std::this_thread::sleep_for(20ms);
    tree.clear();
    std::ifstream kids("/proc/" + std::to_string(b.pid()) + "/task/" + std::to_string(b.pid()) +
                       "/children");
    for (pid_t k; kids >> k;) {
      tree.push_back(k);
      std::ifstream grand("/proc/" + std::to_string(k) + "/task/" + std::to_string(k) +
                          "/children");
      for (pid_t g; grand >> g;)
        tree.push_back(g);
    }
  }
  ASSERT_GE(tree.size(), 3u) << "redis-server, the serve master and a worker: " << b.err();
  b.signal(SIGKILL);
  b.wait_for(5s);
  for (pid_t p : tree)
    EXPECT_TRUE(forq::test::wait_process_gone(p, 20s)) << "pid " << p << " outlived the bench";
}

TEST(bench_test, bad_usage_is_refused_with_exit_2) {
  auto r = run({forq_bin, "bench", "flood"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("flood"), std::string::npos) << r.err;
  r = run({forq_bin, "bench", "drain", "--jobs", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run({forq_bin, "bench", "steady", "--redis", "redis://127.0.0.1:1", "--duration", "0.5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach Redis"), std::string::npos) << r.err;
}

} // namespace
