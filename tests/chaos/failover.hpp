#pragma once

// What the failover tests (sentinel_test.cpp, cluster_test.cpp) share: a producer of numbered
// jobs for the `count` handler at a steady rate through forq's own client, and a failover made
// under its load, counted.
#include "chaos_fixture.hpp"
#include "forq/client.hpp"
#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"
#include "forq/redis_url.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace forq::test::chaos {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// What a producer was told about its enqueues.
struct enqueue_counts {
  std::set<int> acknowledged; // confirmed: these must run
  std::set<int> unconfirmed;  // redis.durability: on the primary, fewer replicas than asked
  std::set<int> unknown;      // an error: may or may not have been added
};

// Enqueues {"seq": first, first+1, ...} for `count` on `queue` through forq::client on its own
// io_context and thread, one every `every`, until stop() (or `limit` jobs), with `replicas`
// as redis.durability asks (0: async; else replicated:N with `wait`).
class producer {
 public:
  producer(std::string url, std::string queue, int replicas, std::chrono::milliseconds wait,
           std::chrono::milliseconds every, int limit = 1 << 30)
      : thread_([=, this] { body(url, queue, replicas, wait, every, limit); }) {}
  ~producer() { stop(); }

  void stop() {
    stopping_ = true;
    finish();
  }
  // Until it has enqueued its `limit`.
  void finish() {
    if (thread_.joinable()) thread_.join();
  }
  enqueue_counts counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }
  std::size_t acknowledged() const {
    std::lock_guard lock(mutex_);
    return counts_.acknowledged.size();
  }

 private:
  void body(const std::string& url, const std::string& queue, int replicas,
            std::chrono::milliseconds wait, std::chrono::milliseconds every, int limit) {
    asio::io_context ioc(1);
    forq::redis::connection_options o;
    o.endpoint = forq::parse_redis_url(url).value();
    forq::redis::set_timeouts(o, 2s);
    o.durability.replicas = replicas;
    o.durability.timeout = wait;
    forq::redis::connection conn(ioc.get_executor(), o);
    asio::co_spawn(ioc, conn.run(), asio::detached);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          forq::client c(conn);
          asio::steady_timer pace(ioc);
          for (int seq = 0; seq < limit && !stopping_; ++seq) {
            forq::queue::new_job j;
            j.handler = "count";
            j.payload = "{\"seq\":" + std::to_string(seq) + ",\"ms\":1}";
            auto r = co_await c.enqueue(queue, j);
            {
              std::lock_guard lock(mutex_);
              if (r)
                counts_.acknowledged.insert(seq);
              else if (r.error() == forq::errc::redis_not_confirmed)
                counts_.unconfirmed.insert(seq);
              else
                counts_.unknown.insert(seq);
            }
            pace.expires_after(every);
            co_await pace.async_wait(asio::use_awaitable);
          }
          conn.stop();
        },
        asio::detached);
    ioc.run();
  }

  mutable std::mutex mutex_;
  enqueue_counts counts_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// One failover under load (failover_test::run_failover).
struct failover_case {
  std::string label; // "sentinel", "cluster": the first word of the line printed
  std::string what;  // the fault, in words
  std::string url;   // forq's --redis, and the producer's
  std::string queue = "s";
  std::vector<std::string> serve_extra;
  int replicas = 0; // the producer's redis.durability: 0 async, else replicated:N
  std::function<void()> fault;
  std::function<bool()> failed_over; // until a new primary serves the queue; false: never
  std::function<void()> after;       // once consuming again
  std::chrono::milliseconds resume_limit{5000}; // fault to consuming again, at most
  // New primary to consuming again, at most: forq's own share of the time, whatever the
  // server's failure detection took.
  std::chrono::milliseconds resume_after_failover_limit{3000};
};

class failover_test : public chaos_test {
 protected:
  // A failover under load: forq serve (1 worker x 16 on c.url, c.serve_extra added) consumes
  // what the producer enqueues to c.queue at ~200 jobs/s; once 200 have run, c.fault, then
  // c.failed_over is awaited, c.after runs, and the load goes on for 2 s. Then every
  // acknowledged job must run exactly as the at-least-once rules allow.
  void run_failover(const failover_case& c) {
    forq_redis_ = c.url;
    std::vector<std::string> args{"--workers", "1", "--concurrency", "16", "--queues", c.queue};
    args.insert(args.end(), c.serve_extra.begin(), c.serve_extra.end());
    auto p = serve(args);
    ASSERT_TRUE(p->wait_for_err("master ready")) << p->err();
    producer load(c.url, c.queue, c.replicas, 1000ms, 5ms);
    ASSERT_TRUE(all_ran(200, 20s)) << p->err();

    const auto ran_at_fault = ran().size();
    const auto fault_at = std::chrono::steady_clock::now();
    c.fault();
    ASSERT_TRUE(c.failed_over()) << "no failover happened";
    const auto failed_over_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - fault_at);
    // Consuming again: 50 more jobs run than had when the fault came (the producer's backlog
    // at the fault is a handful of jobs, so these are mostly jobs enqueued after it).
    ASSERT_TRUE(all_ran(static_cast<int>(ran_at_fault) + 50, 20s)) << "consuming never resumed\n"
                                                                   << p->err();
    const auto resumed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - fault_at);
    if (c.after) c.after();
    std::this_thread::sleep_for(2s);
    load.stop();

    auto sent = load.counts();
    // Every acknowledged job runs; wait for the last ones (up to a lease, for jobs a lost
    // connection left pending).
    auto ran_all = [&] {
      auto r = ran();
      for (int seq : sent.acknowledged)
        if (!r.count(seq)) return false;
      return true;
    };
    for (auto until = std::chrono::steady_clock::now() + 30s;
         !ran_all() && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(50ms);
    auto counts = ran();
    int lost = 0;
    for (int seq : sent.acknowledged)
      lost += counts.count(seq) ? 0 : 1;
    const int dups = duplicates(counts);
    RecordProperty("enqueued", static_cast<int>(sent.acknowledged.size()));
    RecordProperty("unknown", static_cast<int>(sent.unknown.size()));
    RecordProperty("unconfirmed", static_cast<int>(sent.unconfirmed.size()));
    RecordProperty("completed", static_cast<int>(counts.size()));
    RecordProperty("lost", lost);
    RecordProperty("failover_ms", static_cast<int>(failed_over_ms.count()));
    RecordProperty("consuming_again_ms", static_cast<int>(resumed_ms.count()));
    std::printf("[ %s ] %s: enqueued %zu (unknown %zu, not confirmed %zu), completed %zu, "
                "lost %d, duplicated %d; new primary after %lld ms, consuming again after %lld "
                "ms\n",
                c.label.c_str(), c.what.c_str(), sent.acknowledged.size(), sent.unknown.size(),
                sent.unconfirmed.size(), counts.size(), lost, dups,
                static_cast<long long>(failed_over_ms.count()),
                static_cast<long long>(resumed_ms.count()));
    if (std::getenv("FORQ_TEST_SHOW_LOG")) std::printf("%s\n", p->err().c_str());
    EXPECT_EQ(lost, 0) << p->err();
    // An enqueue whose connection was cut before its reply may have been added: a handful, not
    // a stream of failures.
    EXPECT_LE(sent.unknown.size(), 20u);
    EXPECT_LE(dups, 32); // jobs running or unacked on the old primary run again: at most a few
    // Consuming again within the failure detection time + 3 s of the fault (docs/scaling.md).
    // Under the sanitizers (everything several times slower, on 2 cores) the bounds are 3 s
    // looser: the release run holds the documented ones; loss and duplicates are held in both.
#ifdef FORQ_SANITIZED
    const std::chrono::milliseconds slack{3000};
#else
    const std::chrono::milliseconds slack{0};
#endif
    EXPECT_LE(resumed_ms, c.resume_limit + slack) << p->err();
    EXPECT_LE(resumed_ms - failed_over_ms, c.resume_after_failover_limit + slack) << p->err();
    stop(*p);
  }
};

} // namespace forq::test::chaos
