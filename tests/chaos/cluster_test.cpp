// forq on Redis Cluster (docs/scaling.md): three primaries and three replicas on loopback
// (support/cluster.hpp), `forq serve` given the redis-cluster:// URL. One test runs the feature
// set on queues that live on every primary; the others make the cluster change under a
// producer's steady load (failover.hpp) and count what was enqueued, run, lost and duplicated.
#include "failover.hpp"
#include "forq/client.hpp"
#include "queue/history.hpp"
#include "queue/job.hpp"
#include "support/async_test.hpp"
#include "support/cluster.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

namespace {

namespace asio = boost::asio;
using forq::test::redis_cluster;
using forq::test::redis_command;
using forq::test::chaos::failover_case;
using forq::test::chaos::failover_test;
using namespace std::chrono_literals;

class cluster_test : public failover_test {
 protected:
  explicit cluster_test(int replicas = 1)
      : cluster_(replicas) {
    forq_redis_ = cluster_.url();
  }

  forq::redis::connection_options options() const {
    forq::redis::connection_options o;
    o.endpoint = forq::parse_redis_url(cluster_.url()).value();
    forq::redis::set_timeouts(o, 2s);
    return o;
  }

  redis_cluster cluster_;
};

forq::queue::new_job count_job(int seq) {
  forq::queue::new_job j;
  j.handler = "count";
  j.payload = "{\"seq\":" + std::to_string(seq) + ",\"ms\":1}";
  return j;
}

// Queues on each of the three primaries, two worker trees: priorities, delayed jobs, unique ids,
// dead jobs retried and purged, pause and resume, a rate limit, the figures of several queues
// at once (commands for three primaries in one request), job lookup; the CLI and the HTTP API.
TEST_F(cluster_test, every_feature_works_with_queues_on_every_primary) {
  auto primaries = cluster_.primaries();
  ASSERT_EQ(primaries.size(), 3u);
  std::vector<std::string> q;
  for (auto port : primaries)
    q.push_back(cluster_.queue_on(port, "q"));
  // Two serve trees, standing in for two hosts: every job runs once all the same.
  const std::vector<std::string> args{"--workers", "2",        "--concurrency",
                                      "8",         "--queues", q[0] + "," + q[1] + "," + q[2]};
  auto p = serve(args);
  auto p2 = serve(args, "data2");
  ASSERT_TRUE(p->wait_for_err("master ready")) << p->err();
  ASSERT_TRUE(p2->wait_for_err("master ready")) << p2->err();

  auto ran_all = [&](std::initializer_list<int> seqs) {
    auto r = ran();
    for (int s : seqs)
      if (!r.count(s)) return false;
    return true;
  };
  bool finished = forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        forq::redis::connection conn(ex, options());
        asio::co_spawn(ex, conn.run(), asio::detached);
        forq::client c(conn);
        std::string completed_id;
        // Plain jobs at three priorities on every queue, and a delayed one.
        for (int i = 0; i < 30; ++i) {
          auto j = count_job(i);
          j.priority = i % 3 * 4;
          auto r = co_await c.enqueue(q[i % 3], j);
          FORQ_CO_ASSERT(r.has_value());
          if (i == 0) completed_id = r->id;
        }
        auto later = count_job(100);
        later.run_at_ms = forq::queue::epoch_ms() + 300;
        FORQ_CO_ASSERT((co_await c.enqueue(q[1], later)).has_value());
        // A caller's id, twice: the second is a duplicate.
        auto once = count_job(101);
        once.id = "order-7";
        auto first = co_await c.enqueue(q[2], once);
        auto second = co_await c.enqueue(q[2], once);
        FORQ_CO_ASSERT(first.has_value() && second.has_value());
        EXPECT_FALSE(first->duplicate);
        EXPECT_TRUE(second->duplicate);
        // A job that fails its one attempt: dead; retried (dead again), then purged.
        forq::queue::new_job bad;
        bad.handler = "fail";
        bad.payload = "{\"times\":5}";
        bad.max_attempts = 1;
        FORQ_CO_ASSERT((co_await c.enqueue(q[0], bad)).has_value());

        for (int i = 0; i < 200 && !ran_all({0, 15, 29, 100, 101}); ++i)
          co_await forq::test::sleep_for(50ms);
        EXPECT_TRUE(ran_all({0, 15, 29, 100, 101}));
        EXPECT_EQ(ran().count(101), 1u);
        // Until the queue has `n` dead jobs (or 5 s); how many it has.
        auto dead_after = [&](std::size_t n) -> asio::awaitable<std::size_t> {
          std::size_t now = 0;
          for (int i = 0; i < 100; ++i) {
            auto d = co_await c.dead(q[0]);
            now = d ? d->size() : 99;
            if (now == n) break;
            co_await forq::test::sleep_for(50ms);
          }
          co_return now;
        };
        const std::size_t dead_first = co_await dead_after(1);
        EXPECT_EQ(dead_first, 1u);
        auto retried = co_await c.retry_dead(q[0]);
        EXPECT_TRUE(retried && *retried == 1);
        const std::size_t dead_again = co_await dead_after(1);
        EXPECT_EQ(dead_again, 1u);
        auto purged = co_await c.purge_dead(q[0]);
        EXPECT_TRUE(purged && *purged == 1);
        const std::size_t dead_last = co_await dead_after(0);
        EXPECT_EQ(dead_last, 0u);

        // Pause: nothing of the queue runs until resume.
        FORQ_CO_ASSERT((co_await c.pause(q[1])).has_value());
        co_await forq::test::sleep_for(400ms);
        for (int i = 200; i < 205; ++i) {
          const auto j = count_job(i);
          auto r = co_await c.enqueue(q[1], j);
          FORQ_CO_ASSERT(r.has_value());
        }
        co_await forq::test::sleep_for(1000ms);
        EXPECT_FALSE(ran().count(200)) << "a paused queue ran a job";
        FORQ_CO_ASSERT((co_await c.resume(q[1])).has_value());
        for (int i = 0; i < 100 && !ran_all({200, 201, 202, 203, 204}); ++i)
          co_await forq::test::sleep_for(50ms);
        EXPECT_TRUE(ran_all({200, 201, 202, 203, 204}));

        // A rate limit set and cleared.
        auto limited = co_await c.set_rate_limit(q[2], std::make_pair(std::int64_t(100), 1000ms));
        EXPECT_TRUE(limited.has_value());
        const auto j300 = count_job(300);
        auto r300 = co_await c.enqueue(q[2], j300);
        FORQ_CO_ASSERT(r300.has_value());
        EXPECT_TRUE((co_await c.set_rate_limit(q[2], std::nullopt)).has_value());

        // Three queues' figures in one call: commands for three primaries in one request.
        auto stats = co_await c.stats_many(q);
        FORQ_CO_ASSERT(stats.has_value() && stats->size() == 3);
        std::int64_t completed = 0;
        for (const auto& s : *stats)
          completed += s.completed;
        EXPECT_GE(completed, 37);
        auto all = co_await c.queues();
        FORQ_CO_ASSERT(all.has_value());
        for (const auto& name : q)
          EXPECT_NE(std::find(all->begin(), all->end(), name), all->end()) << name;
        auto job = co_await c.get_job(q[0], completed_id);
        FORQ_CO_ASSERT(job.has_value() && job->has_value());
        EXPECT_EQ((*job)->state, "completed");
        conn.stop();
      },
      60s);
  EXPECT_TRUE(finished);
  EXPECT_EQ(duplicates(), 0);

  // The operators' commands and the HTTP API take the same URL.
  auto cli = forq::test::run({forq::test::chaos::worker_bin, "queues", "--redis", cluster_.url()});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  for (const auto& name : q)
    EXPECT_NE(cli.out.find(name), std::string::npos) << cli.out;
  auto port = forq::test::listening_port(p->err());
  auto api = forq::test::http_call(port, "GET", "/v1/queues");
  EXPECT_EQ(api.status, 200) << api.body;
  EXPECT_NE(api.body.find("\"" + q[2] + "\""), std::string::npos) << api.body;
  EXPECT_EQ(forq::test::http_call(port, "GET", "/readyz").status, 200);
  stop(*p);
  stop(*p2);
}

// The figures by the minute (the dashboard's history) with one primary down: the queues on the
// others are added once, the down one's is answered "not added" (so the worker adds it with its
// next flush), and the call ends with its deadline, not the down primary's.
TEST_F(cluster_test, figures_by_the_minute_with_a_primary_down_are_added_once) {
  auto primaries = cluster_.primaries();
  ASSERT_EQ(primaries.size(), 3u);
  std::vector<std::string> q;
  for (auto port : primaries)
    q.push_back(cluster_.queue_on(port, "m"));
  const auto minute = forq::queue::history::minute_of(forq::queue::epoch_ms());
  std::vector<std::pair<std::string, forq::queue::history::delta>> deltas;
  for (int i = 0; i < 3; ++i) {
    forq::queue::history::delta d;
    d.done = 5 + i;
    deltas.emplace_back(q[i], d);
  }
  bool finished = forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        forq::redis::connection conn(ex, options());
        asio::co_spawn(ex, conn.run(), asio::detached);
        // All three up: one add each.
        auto first = co_await forq::queue::history::add(conn, deltas, minute);
        FORQ_CO_ASSERT(first.has_value());
        EXPECT_EQ(*first, std::vector<bool>(3, true));
        // The middle one's primary gone (not yet failed over: that takes a node timeout).
        cluster_.server_on(primaries[1])->stop();
        forq::redis::exec_options o;
        const auto start = std::chrono::steady_clock::now();
        o.deadline = start + 1500ms;
        auto second = co_await forq::queue::history::add(conn, deltas, minute, o);
        const auto took = std::chrono::steady_clock::now() - start;
        FORQ_CO_ASSERT(second.has_value());
        std::vector<bool> expected(3, true);
        expected[1] = false;
        EXPECT_EQ(*second, expected);
        EXPECT_LT(took, 2500ms);
        conn.stop();
      },
      30s);
  EXPECT_TRUE(finished);
  // Each answering primary's queue has exactly its two adds (read once the cluster is whole
  // again: until the replica takes over, the others refuse with CLUSTERDOWN).
  ASSERT_TRUE(cluster_.wait_until_ok(30s, "forq:{" + q[1] + "}:x", primaries[1]));
  for (int i : {0, 2}) {
    auto done = redis_command(
        primaries[i], {"HGET", "forq:{" + q[i] + "}:minutes", std::to_string(minute) + ":d"});
    EXPECT_EQ(done, std::to_string(2 * (5 + i))) << q[i];
  }
}

// CLUSTER FAILOVER on the replica of the queue's primary: it takes over in agreement with its
// primary (no write lost); forq's connections to the old primary get MOVED and follow.
TEST_F(cluster_test, a_cluster_failover_under_load_loses_nothing) {
  failover_case c;
  c.label = "cluster";
  c.what = "CLUSTER FAILOVER";
  c.url = cluster_.url();
  c.queue = cluster_.queue_on(cluster_.primaries().at(0), "s");
  const auto key = "forq:{" + c.queue + "}:x";
  std::uint16_t old_port = 0;
  c.fault = [&] {
    old_port = cluster_.primary_of(key);
    auto replica = cluster_.replica_of(old_port);
    ASSERT_NE(replica, 0);
    ASSERT_EQ(redis_command(replica, {"CLUSTER", "FAILOVER"}), "OK");
  };
  c.failed_over = [&] { return cluster_.wait_until_ok(30s, key, old_port); };
  c.resume_limit = 3s;
  run_failover(c);
}

// Two replicas per primary: one is left to confirm writes once the other is promoted.
class cluster_two_replicas_test : public cluster_test {
 protected:
  cluster_two_replicas_test()
      : cluster_test(2) {}
};

// kill -9 of the queue's primary, with every enqueue and ack confirmed by a replica
// (redis.durability=replicated:1): a replica is elected after node-timeout, and nothing
// acknowledged is lost.
TEST_F(cluster_two_replicas_test,
       the_primary_killed_with_replicated_durability_loses_nothing_acknowledged) {
  failover_case c;
  c.label = "cluster";
  c.what = "kill -9 of the primary, replicated:1";
  c.url = cluster_.url();
  c.queue = cluster_.queue_on(cluster_.primaries().at(1), "s");
  c.serve_extra = {"--redis-durability", "replicated:1"};
  c.replicas = 1;
  const auto key = "forq:{" + c.queue + "}:x";
  std::uint16_t old_port = 0;
  c.fault = [&] {
    old_port = cluster_.primary_of(key);
    cluster_.server_on(old_port)->stop();
  };
  c.failed_over = [&] { return cluster_.wait_until_ok(30s, key, old_port); };
  // Redis's own detection and election take one to two node timeouts (3.2 to 4.2 s measured with
  // 2 s); forq's share, from the new primary to consuming again, is asserted on its own (3 s).
  c.resume_limit = std::chrono::milliseconds(2 * redis_cluster::node_timeout_ms) + 3s;
  run_failover(c);
}

// The queue's slot moved to another primary while it is busy, as redis-cli --cluster reshard
// does it: IMPORTING / MIGRATING, MIGRATE of its keys in batches, then SETSLOT NODE. forq
// follows ASK during the move and MOVED after it.
TEST_F(cluster_test, a_live_slot_migration_of_a_busy_queue_loses_nothing) {
  auto primaries = cluster_.primaries();
  failover_case c;
  c.label = "cluster";
  c.what = "live migration of the queue's slot";
  c.url = cluster_.url();
  c.queue = cluster_.queue_on(primaries.at(2), "s");
  const auto key = "forq:{" + c.queue + "}:x";
  const auto from = primaries.at(2);
  const auto to = primaries.at(0);
  c.fault = [&] {
    auto slot = redis_command(from, {"CLUSTER", "KEYSLOT", key});
    auto from_id = redis_command(from, {"CLUSTER", "MYID"});
    auto to_id = redis_command(to, {"CLUSTER", "MYID"});
    ASSERT_EQ(redis_command(to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}), "OK");
    ASSERT_EQ(redis_command(from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}), "OK");
    for (int round = 0; round < 1000; ++round) {
      auto keys = redis_command(from, {"CLUSTER", "GETKEYSINSLOT", slot, "3"});
      if (keys == "[]") break;
      std::vector<std::string> argv{"MIGRATE", "127.0.0.1", std::to_string(to), "", "0",
                                    "5000",    "KEYS"};
      for (std::size_t at = 1; at < keys.size();) {
        auto end = keys.find_first_of(",]", at);
        argv.push_back(keys.substr(at, end - at));
        at = end + 2;
      }
      auto moved = redis_command(from, argv);
      ASSERT_TRUE(moved == "OK" || moved == "NOKEY") << moved;
      std::this_thread::sleep_for(20ms); // a busy queue: work goes on between the batches
    }
    for (auto port : primaries)
      ASSERT_EQ(redis_command(port, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}), "OK");
  };
  c.failed_over = [&] { return cluster_.wait_until_ok(30s, key, from); };
  c.resume_limit = 5s;
  run_failover(c);
}

} // namespace
