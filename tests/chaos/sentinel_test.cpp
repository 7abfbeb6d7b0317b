// forq on Redis Sentinel (docs/scaling.md): a primary, two replicas and three sentinels on
// loopback (support/sentinel.hpp), `forq serve` given the redis-sentinel:// URL, and a producer
// in this process enqueueing numbered jobs at a steady rate through forq's own client. Each
// test makes a failover happen under that load and counts, by the `count` handler's side-effect
// log: jobs enqueued (acknowledged), completed, lost (acknowledged and never run), duplicated,
// and how long after the fault jobs were being consumed again. Every figure is a test property
// (ctest --output-junit) and one line on stdout.
#include "chaos_fixture.hpp"
#include "failover.hpp"
#include "forq/client.hpp"
#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"
#include "forq/redis_url.hpp"
#include "queue/protocol.hpp"
#include "support/sentinel.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>

namespace {

namespace asio = boost::asio;
using forq::test::redis_command;
using forq::test::sentinel_group;
using forq::test::chaos::enqueue_counts;
using forq::test::chaos::failover_case;
using forq::test::chaos::failover_test;
using forq::test::chaos::producer;
using namespace std::chrono_literals;

class sentinel_test : public failover_test {
 protected:
  sentinel_test() { forq_redis_ = group_.url(); }

  // A failover under load (failover.hpp), the sentinels naming the new primary.
  void failover_under_load(const std::string& what, std::vector<std::string> serve_extra,
                           int replicas, const std::function<void()>& fault,
                           const std::function<void()>& after = {}) {
    std::uint16_t old_port = 0;
    failover_case c;
    c.label = "sentinel";
    c.what = what;
    c.url = group_.url();
    c.serve_extra = std::move(serve_extra);
    c.replicas = replicas;
    c.fault = [&] {
      old_port = group_.primary_port();
      fault();
    };
    c.failed_over = [&] { return group_.wait_for_new_primary(old_port, 30s); };
    c.after = after;
    c.resume_limit = std::chrono::milliseconds(sentinel_group::down_after_ms) + 3s;
    run_failover(c);
  }

  sentinel_group group_;
};

// SENTINEL FAILOVER: a replica is promoted, the old primary demoted (its clients killed); forq
// asks the sentinels again, checks ROLE, and goes on.
TEST_F(sentinel_test, a_sentinel_failover_under_load_loses_nothing) {
  failover_under_load("SENTINEL FAILOVER", {}, 0, [&] {
    ASSERT_EQ(group_.sentinel_command({"SENTINEL", "FAILOVER", sentinel_group::master_name}), "OK");
  });
}

// kill -9 of the primary, with every enqueue and ack confirmed by a replica
// (redis.durability=replicated:1): nothing acknowledged is lost; the old primary then comes back
// (empty, on its port) and the sentinels make it a replica: forq never writes to it.
TEST_F(sentinel_test, the_primary_killed_with_replicated_durability_loses_nothing_acknowledged) {
  std::uint16_t old_port = 0;
  failover_under_load(
      "kill -9 of the primary, replicated:1", {"--redis-durability", "replicated:1"}, 1,
      [&] {
        old_port = group_.primary_port();
        group_.server_on(old_port)->stop();
      },
      [&] {
        group_.server_on(old_port)->start();
        auto until = std::chrono::steady_clock::now() + 25s;
        while (redis_command(old_port, {"ROLE"}).rfind("[slave", 0) != 0 &&
               std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(100ms);
        EXPECT_EQ(redis_command(old_port, {"ROLE"}).rfind("[slave", 0), 0u)
            << "the old primary did not come back as a replica";
      });
}

// The test that proves the others can see loss. The replicas are frozen (SIGSTOP) and cut off
// (CLIENT KILL TYPE replica on the primary: nothing more reaches their sockets), jobs are
// enqueued, the primary is killed, the replicas thawed and one promoted: with async durability
// the acknowledged jobs are gone (loss > 0); with replicated:1 each enqueue said "not confirmed"
// instead, so nothing acknowledged was lost.
TEST_F(sentinel_test, loss_after_a_failover_is_seen_with_async_and_reported_with_replicated) {
  const int n = 10;
  for (std::size_t i = 1; i < group_.servers().size(); ++i)
    group_.servers()[i]->freeze();
  ASSERT_EQ(group_.servers()[0]->command({"CLIENT", "KILL", "TYPE", "replica"}), "2");
  producer async_jobs(group_.url(), "async", 0, 0ms, 0ms, n);
  producer replicated_jobs(group_.url(), "replicated", 1, 200ms, 0ms, n);
  async_jobs.finish();
  replicated_jobs.finish();
  auto a = async_jobs.counts();
  auto r = replicated_jobs.counts();
  ASSERT_EQ(a.acknowledged.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(r.unconfirmed.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(r.acknowledged.size(), 0u);

  const auto old_port = group_.primary_port();
  group_.server_on(old_port)->stop();
  for (std::size_t i = 1; i < group_.servers().size(); ++i)
    group_.servers()[i]->signal_continue();
  ASSERT_TRUE(group_.wait_for_new_primary(old_port, 30s)) << "no failover happened";
  auto on_new = [&](const std::string& queue) {
    auto len =
        redis_command(group_.primary_port(), {"XLEN", forq::queue::keys::stream_key(queue, 0)});
    return std::stoi(len);
  };
  const int async_lost = static_cast<int>(a.acknowledged.size()) - on_new("async");
  const int replicated_lost = static_cast<int>(r.acknowledged.size()) - on_new("replicated");
  RecordProperty("async_lost", async_lost);
  RecordProperty("replicated_not_confirmed", static_cast<int>(r.unconfirmed.size()));
  RecordProperty("replicated_lost", replicated_lost);
  std::printf("[ sentinel ] frozen replicas, kill -9: async lost %d of %d acknowledged; "
              "replicated:1 reported %zu of %d not confirmed, lost %d acknowledged\n",
              async_lost, n, r.unconfirmed.size(), n, std::max(replicated_lost, 0));
  EXPECT_GT(async_lost, 0);
  EXPECT_LE(replicated_lost, 0);
}

// The +switch-master subscription on its own: a connection with on_switch_master hears the
// failover announced, with the new primary's address, and is connected there afterwards.
TEST(sentinel_connection, hears_a_failover_announced_and_moves_to_the_new_primary) {
  sentinel_group group;
  asio::io_context ioc(1);
  forq::redis::connection_options o;
  o.endpoint = forq::parse_redis_url(group.url()).value();
  forq::redis::set_timeouts(o, 2s);
  std::string heard;
  o.on_switch_master = [&](const std::string& now_at) { heard = now_at; };
  forq::redis::connection conn(ioc.get_executor(), o);
  std::string first, last, wrote;
  asio::co_spawn(ioc, conn.run(), asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(ioc);
        auto wait_until = [&](auto done, std::chrono::milliseconds limit) -> asio::awaitable<bool> {
          for (auto until = std::chrono::steady_clock::now() + limit;
               std::chrono::steady_clock::now() < until;) {
            if (done()) co_return true;
            t.expires_after(20ms);
            co_await t.async_wait(asio::use_awaitable);
          }
          co_return done();
        };
        co_await wait_until([&] { return conn.ready(); }, 10s);
        first = conn.primary();
        // Give the subscription a moment to be made (one loopback round trip or two).
        t.expires_after(300ms);
        co_await t.async_wait(asio::use_awaitable);
        group.sentinel_command({"SENTINEL", "FAILOVER", sentinel_group::master_name});
        co_await wait_until(
            [&] { return !heard.empty() && conn.ready() && conn.primary() == heard; }, 20s);
        last = conn.primary();
        auto r = co_await conn.command("SET", "moved", "yes");
        wrote = r ? r->to_string() : r.error().message();
        conn.stop();
      },
      asio::detached);
  ioc.run();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(heard, "127.0.0.1:" + std::to_string(group.primary_port()));
  EXPECT_NE(heard, first);
  EXPECT_EQ(last, heard);
  EXPECT_EQ(wrote, "OK");
}

} // namespace
