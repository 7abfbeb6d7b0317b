// The consumer side of the queue protocol against a real redis-server: every job runs, retries
// and dead jobs land where docs/protocol.md says, bad jobs never block good ones.
#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "support/async_test.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

namespace {

namespace asio = boost::asio;
using namespace forq;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::test::sleep_for;

class consumer_test : public forq::test::redis_test {
 protected:
  std::map<std::string, int> calls_; // attempts per job id
  std::vector<std::string> order_;   // job ids in the order their attempts started

  queue::handler counting(std::function<queue::outcome(const queue::delivered_job&, int)> f) {
    return [this, f](const queue::delivered_job& j,
                     queue::context&) -> asio::awaitable<queue::outcome> {
      order_.push_back(j.id);
      co_return f(j, ++calls_[j.id]);
    };
  }

  // Enqueues with `produce`, runs a consumer until `until` holds (or the deadline), stops it,
  // and waits for it to finish.
  void run(queue::consumer_options o, queue::handler_map handlers,
           std::function<asio::awaitable<void>(redis::connection&)> produce,
           std::function<bool(const queue::consumer&)> until) {
    test::run_async(
        [&]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          redis::pool pool(ex, pool_options());
          queue::consumer c(pool, o, handlers);
          auto body = [&]() -> asio::awaitable<void> {
            co_await produce(pool.commands());
            auto result = co_await c.run();
            EXPECT_FALSE(result) << result.message();
            pool.stop();
          };
          auto watch = [&]() -> asio::awaitable<void> {
            while (!until(c))
              co_await sleep_for(5ms);
            c.stop();
          };
          co_await (pool.run() && body() && watch());
        },
        30s);
  }

  static queue::consumer_options options() {
    queue::consumer_options o;
    o.queue = "work";
    o.block = 100ms;
    o.retry.backoff = 20ms;
    o.retry.exponential = false;
    return o;
  }

  // One job of handler "j", read by a consumer "ghost" that will never acknowledge it: what a
  // worker killed mid-job leaves behind.
  asio::awaitable<void> hand_to_ghost(redis::connection& c) {
    co_await enqueue_n(c, 1, "j");
    co_await queue::init_queue(c, "work");
    redis_.command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "1", "STREAMS",
                    "forq:{work}:stream", ">"});
  }

  // Leases short enough for a test to see one expire.
  static queue::consumer_options short_lease() {
    auto o = options();
    o.lease = 300ms;
    return o;
  }

  // "none" returns nothing, "some" returns a result (kept in results:data).
  queue::handler_map none_and_some() {
    return {{"none", counting([](auto&, int) { return queue::outcome::success(); })},
            {"some", counting([](auto&, int) { return queue::outcome::success("{}"); })}};
  }

  // A handler that counts its calls and succeeds.
  queue::handler_map succeed(const std::string& name) {
    return {{name, counting([](auto&, int) { return queue::outcome::success(); })}};
  }

  static asio::awaitable<void> enqueue_n(redis::connection& conn, int n, std::string handler) {
    for (int i = 0; i < n; ++i) {
      queue::new_job j;
      j.handler = handler;
      j.payload = "{\"n\":" + std::to_string(i) + "}";
      auto r = co_await queue::enqueue(conn, "work", j);
      EXPECT_TRUE(r);
    }
  }
};

TEST_F(consumer_test, every_job_runs_once_and_is_acknowledged) {
  queue::handler_map h{
      {"count", counting([](auto&, int) { return queue::outcome::success("1"); })}};
  run(
      options(), h, [](redis::connection& c) { return enqueue_n(c, 500, "count"); },
      [](const queue::consumer& c) { return c.stats().done == 500; });
  EXPECT_EQ(calls_.size(), 500u);
  for (const auto& [id, n] : calls_)
    EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "500");
  EXPECT_EQ(redis_.command({"XPENDING", "forq:{work}:stream", "workers"}).substr(0, 3), "[0,");
  EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:results:data"}), "500");
}

TEST_F(consumer_test, a_failing_job_is_retried_after_its_backoff_then_succeeds) {
  queue::handler_map h{{"flaky", counting([](auto&, int n) {
                          return n < 3 ? queue::outcome::retry_later("boom " + std::to_string(n))
                                       : queue::outcome::success("\"ok\"");
                        })}};
  run(
      options(), h, [](redis::connection& c) { return enqueue_n(c, 1, "flaky"); },
      [](const queue::consumer& c) { return c.stats().done == 1; });
  ASSERT_EQ(calls_.size(), 1u);
  auto id = calls_.begin()->first;
  EXPECT_EQ(calls_[id], 3); // one id for life, across attempts
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "retried"}), "2");
  auto record = boost::json::parse(redis_.command({"HGET", "forq:{work}:results:data", id}));
  EXPECT_EQ(record.at("result"), "ok");
  EXPECT_EQ(record.at("attempt"), 3);
  EXPECT_EQ(redis_.command({"ZCARD", "forq:{work}:delayed"}), "0");
}

TEST_F(consumer_test, a_job_that_keeps_failing_is_dead_with_the_reason) {
  queue::handler_map h{
      {"broken", counting([](auto&, int) { return queue::outcome::retry_later("boom"); })}};
  run(
      options(), h, [](redis::connection& c) { return enqueue_n(c, 1, "broken"); },
      [](const queue::consumer& c) { return c.stats().dead == 1; });
  EXPECT_EQ(calls_.begin()->second, 3); // the policy's max_attempts
  auto id = calls_.begin()->first;
  auto dead = boost::json::parse(redis_.command({"HGET", "forq:{work}:dead:jobs", id})).as_object();
  EXPECT_EQ(dead.at("reason").as_string(), "failed 3 times; last error: boom");
  EXPECT_EQ(dead.at("attempt").as_string(), "3");
  EXPECT_EQ(dead.at("handler").as_string(), "broken");
}

TEST_F(consumer_test, a_handler_that_throws_is_retried_with_the_message) {
  queue::handler_map h{
      {"thrower",
       [](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
         throw std::runtime_error("null pointer in user code");
         co_return queue::outcome::success();
       }}};
  auto o = options();
  o.retry.max_attempts = 2;
  run(
      o, h, [](redis::connection& c) { return enqueue_n(c, 1, "thrower"); },
      [](const queue::consumer& c) { return c.stats().dead == 1; });
  auto all = redis_.command({"HVALS", "forq:{work}:dead:jobs"});
  EXPECT_NE(all.find("the handler threw: null pointer in user code"), std::string::npos) << all;
}

// The handler's context (forq/queue/handler.hpp): the attempt's number, progress written to
// Redis while it runs (bad values refused, nothing written for them) and cleared when it ends,
// and a follow-up job enqueued on the worker's own connection.
TEST_F(consumer_test, a_handler_reports_progress_and_enqueues_through_its_context) {
  std::vector<int> attempts;
  std::string progress_seen;
  std::vector<std::string> refusals;
  int children = 0;
  queue::handler_map h{
      {"parent",
       [&](const queue::delivered_job&, queue::context& ctx) -> asio::awaitable<queue::outcome> {
         attempts.push_back(ctx.attempt());
         EXPECT_EQ(ctx.stalls(), 0);
         EXPECT_FALSE(ctx.deadline()) << "no attempt_timeout: no deadline";
         EXPECT_FALSE(ctx.cancelled());
         if (ctx.attempt() == 1) {
           for (auto bad : {std::string("not json"), std::string(5000, '1')})
             if (auto r = ctx.progress(bad); !r) refusals.push_back(r.error().message());
           EXPECT_TRUE(ctx.progress(R"({"step":1})"));
           EXPECT_TRUE(ctx.progress(R"({"step":2})")); // replaces step 1 before it is written
           co_await sleep_for(300ms);
           progress_seen = redis_.command({"HVALS", "forq:{work}:progress"});
           queue::new_job child;
           child.handler = "child";
           child.id = "child-of-parent";
           auto r = co_await ctx.enqueue("work", child);
           EXPECT_TRUE(r && r->id == "child-of-parent" && !r->duplicate);
           co_return queue::outcome::retry_later("once more", 10ms);
         }
         co_return queue::outcome::success();
       }},
      {"child", counting([&](auto&, int) {
         ++children;
         return queue::outcome::success();
       })}};
  run(
      options(), h, [](redis::connection& c) { return enqueue_n(c, 1, "parent"); },
      [&](const queue::consumer& c) { return c.stats().done == 2; });
  EXPECT_EQ(attempts, (std::vector<int>{1, 2}));
  EXPECT_EQ(children, 1);
  EXPECT_EQ(progress_seen, R"([{"step":2}])");
  ASSERT_EQ(refusals.size(), 2u);
  EXPECT_NE(refusals[0].find("must be JSON"), std::string::npos) << refusals[0];
  EXPECT_NE(refusals[1].find("5000 bytes is not allowed: at most 4096"), std::string::npos)
      << refusals[1];
  EXPECT_EQ(redis_.command({"EXISTS", "forq:{work}:progress"}), "0") << "cleared as it ended";
}

// consumer_options::attempt_timeout: past its deadline the attempt is cancelled (what it
// awaits ends with operation_aborted), said so through its context, and retried per policy.
TEST_F(consumer_test, an_attempt_past_the_queue_s_timeout_is_cancelled_and_retried) {
  std::vector<std::string> seen;
  queue::handler_map h{
      {"slow",
       [&](const queue::delivered_job&, queue::context& ctx) -> asio::awaitable<queue::outcome> {
         EXPECT_TRUE(ctx.deadline());
         if (ctx.attempt() > 1) co_return queue::outcome::success();
         try {
           co_await sleep_for(20s);
         } catch (const boost::system::system_error& e) {
           seen.push_back(e.code() == asio::error::operation_aborted ? "aborted" : e.what());
           seen.push_back(ctx.cancel_reason());
           throw;
         }
         co_return queue::outcome::success("\"not reached\"");
       }}};
  auto o = options();
  o.attempt_timeout = 200ms;
  o.retry.max_attempts = 3;
  const auto started = std::chrono::steady_clock::now();
  run(
      o, h, [](redis::connection& c) { return enqueue_n(c, 1, "slow"); },
      [](const queue::consumer& c) { return c.stats().done == 1; });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "aborted");
  EXPECT_EQ(seen[1], "timed out after 200 ms (the queue's timeout)");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "retried"}), "1");
}

// outcome::cancelled: the job ends cancelled at once (by "handler"), never retried, with the
// reason.
TEST_F(consumer_test, a_cancelled_outcome_is_never_retried) {
  queue::handler_map h{{"stop", counting([](auto&, int) {
                          return queue::outcome::cancelled("the order was withdrawn");
                        })}};
  auto o = options();
  o.retry.max_attempts = 5;
  run(
      o, h, [](redis::connection& c) { return enqueue_n(c, 1, "stop"); },
      [](const queue::consumer& c) { return c.stats().cancelled == 1; });
  EXPECT_EQ(calls_.begin()->second, 1);
  auto all = redis_.command({"HVALS", "forq:{work}:cancelled:jobs"});
  EXPECT_NE(all.find("\"cancel_reason\":\"the order was withdrawn\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"cancelled_by\":\"handler\""), std::string::npos) << all;
  EXPECT_EQ(redis_.command({"ZCARD", "forq:{work}:dead"}), "0");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "cancelled"}), "1");
}

TEST_F(consumer_test, bad_jobs_go_dead_with_reasons_and_never_block_good_ones) {
  queue::handler_map h{{"good", counting([](auto&, int) { return queue::outcome::success(); })}};
  run(
      options(), h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        // As a careless foreign producer would write them, straight into the stream.
        redis_.command({"XADD", "forq:{work}:stream", "*", "payload", "{}"});
        redis_.command({"XADD", "forq:{work}:stream", "*", "handler", "good", "payload", "{nope"});
        redis_.command({"XADD", "forq:{work}:stream", "*", "handler", "nobody", "payload", "{}"});
        redis_.command({"XADD", "forq:{work}:stream", "*", "handler", "good", "payload", "{}",
                        "attempt", "minus one"});
        co_await enqueue_n(c, 20, "good");
      },
      [](const queue::consumer& c) { return c.stats().done == 20 && c.stats().dead == 4; });
  auto dead = redis_.command({"HVALS", "forq:{work}:dead:jobs"});
  for (auto reason : {"the job names no handler and queue \\\"work\\\" has no default handler",
                      "malformed job: payload is not JSON", "unknown handler \\\"nobody\\\"",
                      "malformed job: field attempt is not a whole number"})
    EXPECT_NE(dead.find(reason), std::string::npos) << reason << " in " << dead;
  EXPECT_EQ(calls_.size(), 20u);
}

// What a careless or hostile foreign producer can write straight into the stream: each ends in
// the dead set with its reason, and the good jobs written around them all run.
TEST_F(consumer_test, a_corpus_of_hostile_jobs_goes_dead_with_reasons_around_good_ones) {
  queue::handler_map h{{"good", counting([](auto&, int) { return queue::outcome::success(); })}};
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string huge = "\"" + std::string(2u << 20, 'x') + "\"";
  std::vector<std::pair<std::vector<std::string>, std::string>> corpus{
      {{"handler", "good", "payload", "{nope"}, "payload is not JSON"},
      {{"handler", "good"}, "no payload field"},
      {{"handler", "good", "payload", "{}", "attempt", "minus one"}, "field attempt is not"},
      {{"handler", "good", "payload", "{}", "max_attempts", "-3"}, "field max_attempts is not"},
      {{"handler", "good", "payload", deep}, "payload is not JSON"},
      {{"handler", "good", "payload", "\"\xff\xfe\""}, "payload is not JSON"},
      {{"handler", "good", "payload", "{\"a\":\"\xc3\"}"}, "payload is not JSON"},
      {{"handler", "good", "payload", huge}, "payload is 2097154 bytes; the limit is 1048576"},
      {{"handler", std::string(5000, 'h'), "payload", "{}"}, "handler name is 5000 bytes"},
      {{"handler", "good", "payload", "{}", "id", std::string(300, 'i')}, "id is 300 bytes"},
      {{"handler", "nobody", "payload", "{}"}, "unknown handler"},
      {{"handler", "", "payload", "{}"}, "names no handler"},
      {{"payload", "[1]"}, "names no handler"},
  };
  run(
      options(), h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        for (const auto& [fields, why] : corpus) {
          std::vector<std::string> argv{"XADD", "forq:{work}:stream", "*"};
          argv.insert(argv.end(), fields.begin(), fields.end());
          redis_.command(argv);
          co_await enqueue_n(c, 5, "good"); // good jobs between every bad one
        }
      },
      [&](const queue::consumer& c) {
        return c.stats().done == 5 * corpus.size() && c.stats().dead == corpus.size();
      });
  EXPECT_EQ(calls_.size(), 5 * corpus.size());
  auto dead = redis_.command({"HVALS", "forq:{work}:dead:jobs"});
  for (const auto& [fields, why] : corpus)
    EXPECT_NE(dead.find(why), std::string::npos) << why;
}

TEST_F(consumer_test, jobs_naming_no_handler_run_the_queue_s_default_handler) {
  std::vector<std::string> ran; // the handler each job ran with, as the job says
  auto record = [&](const queue::delivered_job& j,
                    queue::context&) -> asio::awaitable<queue::outcome> {
    ran.push_back(j.handler);
    co_return queue::outcome::success();
  };
  queue::handler_map h{{"plain", record}, {"other", record}};
  auto o = options();
  o.default_handler = "plain";
  run(
      o, h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        redis_.command({"XADD", "forq:{work}:stream", "*", "payload", "{}"}); // a foreign one
        queue::new_job none; // forq's own producer writes no handler field either
        none.payload = R"({"n":1})";
        co_await queue::enqueue(c, "work", none);
        queue::new_job named;
        named.handler = "other";
        co_await queue::enqueue(c, "work", named);
      },
      [](const queue::consumer& c) { return c.stats().done == 3; });
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(std::count(ran.begin(), ran.end(), "plain"), 2);
  EXPECT_EQ(std::count(ran.begin(), ran.end(), "other"), 1);
}

TEST_F(consumer_test, higher_priorities_run_first) {
  queue::handler_map h{{"p", counting([](auto&, int) { return queue::outcome::success(); })}};
  auto o = options();
  o.concurrency = 1;
  std::vector<std::string> high;
  run(
      o, h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) {
          queue::new_job low;
          low.handler = "p";
          co_await queue::enqueue(c, "work", low);
        }
        for (int i = 0; i < 5; ++i) {
          queue::new_job urgent;
          urgent.handler = "p";
          urgent.priority = 9;
          auto r = co_await queue::enqueue(c, "work", urgent);
          if (r) high.push_back(r->id);
        }
      },
      [](const queue::consumer& c) { return c.stats().done == 10; });
  ASSERT_EQ(order_.size(), 10u);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(order_[i], high[i]) << "position " << i;
}

TEST_F(consumer_test, results_are_bounded_by_count) {
  queue::handler_map h{{"r", counting([](auto&, int) { return queue::outcome::success("{}"); })}};
  auto o = options();
  o.max_results = 10;
  run(
      o, h, [](redis::connection& c) { return enqueue_n(c, 50, "r"); },
      [](const queue::consumer& c) { return c.stats().done == 50; });
  // Exact, though acks come in batches: tidy.lua can evict part of a batch.
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "results_kept"}), "10");
  EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:results:data"}), "10");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "50");
}

// Issue 16: most jobs return nothing, and tidy.lua then evicts without reading their ids. Jobs
// with records and without, one after the other, are bounded exactly all the same, the records
// go with their jobs, and the index stays whole (its batch headers add up to its length).
TEST_F(consumer_test, results_are_bounded_by_count_whether_or_not_jobs_return_something) {
  auto h = none_and_some();
  auto o = options();
  o.max_results = 10;
  o.tidy_every = 20ms;
  auto index = [this] { // {ids by the headers, 1 if the walk ends exactly at the list's end}
    return redis_.command({"EVAL",
                           "local l = redis.call('LRANGE', KEYS[1], 0, -1) local i, c = 1, 0 "
                           "while i <= #l do local n = tonumber(l[i + 1]) c = c + n "
                           "i = i + 2 + n end return {c, i == #l + 1 and 1 or 0}",
                           "1", "forq:{work}:results"});
  };
  const std::pair<const char*, const char*> rounds[] = {
      {"none", "0"}, {"some", "10"}, {"none", "0"}};
  for (auto [handler, records] : rounds) {
    run(
        o, h, [handler](redis::connection& c) { return enqueue_n(c, 30, handler); },
        [this](const queue::consumer& c) {
          return c.stats().done == 30 &&
                 redis_.command({"HGET", "forq:{work}:stats", "results_kept"}) == "10";
        });
    EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "results_kept"}), "10") << handler;
    EXPECT_EQ(index(), "[10, 1]") << handler;
    EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:results:data"}), records) << handler;
  }
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "90");
}

// Every result older than keep_results goes, with its record, and the counter then reads 0 (not
// less: tidy.lua counts a call's evictions once, and an emptied index resets it).
TEST_F(consumer_test, results_older_than_keep_results_all_go_and_the_count_reads_zero) {
  auto h = none_and_some();
  auto o = options();
  o.keep_results = 100ms;
  o.tidy_every = 20ms;
  run(
      o, h,
      [](redis::connection& c) -> asio::awaitable<void> {
        co_await enqueue_n(c, 5, "none");
        co_await enqueue_n(c, 5, "some");
      },
      [this](const queue::consumer& c) {
        return c.stats().done == 10 && redis_.command({"LLEN", "forq:{work}:results"}) == "0";
      });
  EXPECT_EQ(redis_.command({"LLEN", "forq:{work}:results"}), "0");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "results_kept"}), "0");
  EXPECT_EQ(redis_.command({"EXISTS", "forq:{work}:results:data"}), "0");
}

TEST_F(consumer_test, a_job_that_returns_nothing_is_indexed_without_a_record) {
  run(
      options(), succeed("j"), [](redis::connection& c) { return enqueue_n(c, 3, "j"); },
      [](const queue::consumer& c) { return c.stats().done == 3; });
  EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:results:data"}), "0");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "results_kept"}), "3");
  auto index = redis_.command({"LRANGE", "forq:{work}:results", "0", "-1"});
  for (const auto& [id, n] : calls_)
    EXPECT_NE(index.find(id), std::string::npos) << id;
}

TEST_F(consumer_test, settled_entries_are_trimmed_from_the_stream) {
  auto o = options();
  o.tidy_every = 20ms;
  run(
      o, succeed("j"), [](redis::connection& c) { return enqueue_n(c, 1000, "j"); },
      [](const queue::consumer& c) { return c.stats().done == 1000; });
  // XTRIM MINID ~ removes whole nodes (100 entries by default): at most the newest is left.
  EXPECT_LE(std::stoi(redis_.command({"XLEN", "forq:{work}:stream"})), 100);
}

TEST_F(consumer_test, stop_lets_jobs_in_flight_finish_and_acknowledges_them) {
  queue::handler_map h{
      {"slow",
       [this](const queue::delivered_job& j, queue::context&) -> asio::awaitable<queue::outcome> {
         ++calls_[j.id];
         co_await sleep_for(200ms);
         co_return queue::outcome::success();
       }}};
  run(
      options(), h, [](redis::connection& c) { return enqueue_n(c, 5, "slow"); },
      [this](const queue::consumer&) { return calls_.size() == 5; }); // stop while all run
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "5");
  EXPECT_EQ(redis_.command({"XPENDING", "forq:{work}:stream", "workers"}).substr(0, 3), "[0,");
}

// A consumer that died holding a job (here: a "ghost" that read it and never acknowledged):
// once the lease runs out, a live consumer takes it back and runs it.
TEST_F(consumer_test, a_job_held_by_a_dead_consumer_is_recovered_after_its_lease) {
  auto h = succeed("j");
  auto o = short_lease();
  run(
      o, h, [&](redis::connection& c) -> asio::awaitable<void> { co_await hand_to_ghost(c); },
      [](const queue::consumer& c) { return c.stats().done == 1; });
  EXPECT_EQ(calls_.size(), 1u);
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "stalled"}), "1");
  EXPECT_EQ(redis_.command({"XPENDING", "forq:{work}:stream", "workers"}).substr(0, 3), "[0,");
}

// A lease about to run out brings the next stall look to within a second of it: with a 9 s
// lease (looks every 3 s), a job a ghost took 0.5 s in expires at 9.5 s and is run again by
// 10.5 s, where a look every third of a lease would have come only at 12 s.
TEST_F(consumer_test, a_stalled_job_runs_again_within_a_second_of_its_lease_running_out) {
  auto o = options();
  o.lease = 9s;
  std::optional<std::chrono::steady_clock::time_point> started, taken, ran;
  queue::handler_map h{
      {"j", [&](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
         if (!ran) ran = std::chrono::steady_clock::now();
         co_return queue::outcome::success();
       }}};
  run(
      o, h,
      [&](redis::connection& c) -> asio::awaitable<void> { co_await queue::init_queue(c, "work"); },
      [&](const queue::consumer& c) {
        const auto now = std::chrono::steady_clock::now();
        if (c.started() && !started) started = now;
        if (started && !taken && now - *started > 500ms) {
          // Added and taken by the ghost in one step: the waiting consumer never sees it.
          redis_.command({"EVAL",
                          "redis.call('XADD', KEYS[1], '*', 'handler', 'j', 'payload', '{}') "
                          "return redis.call('XREADGROUP', 'GROUP', 'workers', 'ghost', "
                          "'COUNT', 1, 'STREAMS', KEYS[1], '>')",
                          "1", "forq:{work}:stream"});
          taken = now;
        }
        return ran.has_value() || (taken && now - *taken > 15s);
      });
  ASSERT_TRUE(taken && ran);
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(*ran - *taken);
  RecordProperty("recovered_after_ms", static_cast<int>(after.count()));
  EXPECT_GE(after, 9s);
  EXPECT_LE(after, 10s + 200ms) << "recovered " << after.count() << " ms after the ghost took it";
}

TEST_F(consumer_test, a_job_that_stalls_too_often_is_dead_with_the_count) {
  auto h = succeed("j");
  auto o = short_lease();
  o.max_stalls = 3;
  run(
      o, h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        co_await hand_to_ghost(c);
        auto listing = redis_.command({"XRANGE", "forq:{work}:stream", "-", "+"}); // [[id, [...]]]
        auto id = listing.substr(2, listing.find(',') - 2);
        // As if it had been recovered four times already.
        redis_.command({"XCLAIM", "forq:{work}:stream", "workers", "ghost", "0", id, "RETRYCOUNT",
                        "4", "JUSTID"});
      },
      [](const queue::consumer& c) { return c.stats().dead == 1; });
  EXPECT_TRUE(calls_.empty()) << "a job past max_stalls was run again";
  auto dead = redis_.command({"HVALS", "forq:{work}:dead:jobs"});
  EXPECT_NE(dead.find("stalled 4 times"), std::string::npos) << dead;
}

// Stall recovery looks at priority 0 and at the priorities consumers said they fetch from (the
// queue's `priorities` set), and at every stream on the keeper's full look: a stalled job of any
// priority comes back, and an idle queue is not scanned ten streams at a time.
TEST_F(consumer_test, stall_recovery_finds_every_priority_through_the_set_or_the_full_look) {
  auto h = succeed("j");
  auto enqueue_at = [](redis::connection& c, int priority) -> asio::awaitable<void> {
    queue::new_job j;
    j.handler = "j";
    j.priority = priority;
    EXPECT_TRUE(co_await queue::enqueue(c, "work", j));
  };
  // A consumer that fetches a priority-5 job says so before running it.
  run(
      short_lease(), h, [&](redis::connection& c) { return enqueue_at(c, 5); },
      [](const queue::consumer& c) { return c.stats().done == 1; });
  EXPECT_EQ(redis_.command({"SMEMBERS", "forq:{work}:priorities"}), "[5]");

  // A priority-5 job held by a dead consumer: found within a lease and a look (no full look).
  auto ghost_at = [&](int priority) {
    return [this, enqueue_at, priority](redis::connection& c) -> asio::awaitable<void> {
      co_await enqueue_at(c, priority);
      redis_.command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "1", "STREAMS",
                      "forq:{work}:stream:p" + std::to_string(priority), ">"});
    };
  };
  auto o = short_lease();
  o.full_upkeep_every = std::chrono::hours(1);
  auto started = std::chrono::steady_clock::now();
  run(o, h, ghost_at(5), [](const queue::consumer& c) { return c.stats().recovered == 1; });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "stalled"}), "1");

  // Priority 7 is in no set (its consumer kept none): the keeper's full look finds it.
  o.full_upkeep_every = 600ms;
  run(o, h, ghost_at(7), [](const queue::consumer& c) { return c.stats().recovered == 1; });
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "stalled"}), "2");
  EXPECT_EQ(redis_.command({"XPENDING", "forq:{work}:stream:p7", "workers"}).substr(0, 3), "[0,");
}

// A consumer that is not its queue's keeper sends Redis nothing of its own while idle but its
// blocking fetches; the keeper's looks stay on their timers.
TEST_F(consumer_test, only_the_keeper_looks_after_an_idle_queue) {
  auto idle_commands = [&](bool keeper) {
    auto o = options();
    o.block = 500ms;
    o.lease = 600ms; // stall looks every 200 ms
    o.promote_check_every = 200ms;
    o.keeper = [keeper] { return keeper; };
    std::optional<std::chrono::steady_clock::time_point> t0;
    run(
        o, {}, [](redis::connection&) -> asio::awaitable<void> { co_return; },
        [&](const queue::consumer& c) {
          if (!t0 && c.started()) { // the queue is set up: from here on, idling only
            redis_.command({"CONFIG", "RESETSTAT"});
            t0 = std::chrono::steady_clock::now();
          }
          return t0 && std::chrono::steady_clock::now() - *t0 > 2s;
        });
    return redis_.command({"INFO", "commandstats"});
  };
  auto calls = [](const std::string& stats, const std::string& name) {
    const std::string key = "cmdstat_" + name + ":calls=";
    auto at = stats.find(key);
    if (at == std::string::npos) return 0L;
    return std::stol(stats.substr(at + key.size()));
  };
  auto other = idle_commands(false);
  EXPECT_EQ(calls(other, "evalsha"), 0) << other;    // no promote.lua, no tidy.lua
  EXPECT_EQ(calls(other, "zrange"), 0) << other;     // no look at what is delayed
  EXPECT_EQ(calls(other, "xautoclaim"), 0) << other; // no stall look
  EXPECT_EQ(calls(other, "xpending"), 0) << other;
  EXPECT_LE(calls(other, "xreadgroup"), 6) << other; // 2 s of 500 ms waits
  auto kept = idle_commands(true);
  EXPECT_GE(calls(kept, "zrange"), 5) << kept; // a look at `delayed` every 200 ms
  // No promote.lua (nothing is due): at most the start-up tidy below, when it comes after
  // RESETSTAT, with its NOSCRIPT retry.
  EXPECT_LE(calls(kept, "evalsha"), 2) << kept;
  EXPECT_GE(calls(kept, "xautoclaim"), 5) << kept; // a stall look every 200 ms (priority 0)
  // One tidy of every stream when it starts (before or after RESETSTAT), none since: idle,
  // nothing was settled.
  EXPECT_LE(calls(kept, "xinfo|groups"), 10) << kept;
}

// An idle consumer waits inside Redis for up to `block` (30 s by default); stop() must not wait
// that out. It ends the wait with CLIENT UNBLOCK; where that is refused (an ACL without it), it
// drops the blocking connection after a second.
TEST_F(consumer_test, stop_ends_a_long_wait_inside_redis_at_once_even_without_client_unblock) {
  redis_.command({"ACL", "SETUSER", "nounblock", "on", ">a-long-enough-secret", "~*", "&*", "+@all",
                  "-client|unblock"});
  for (bool may_unblock : {true, false}) {
    std::chrono::steady_clock::time_point stopped, done;
    test::run_async(
        [&]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          auto po = pool_options();
          if (!may_unblock) {
            po.connection.endpoint.user = "nounblock";
            po.connection.endpoint.password = "a-long-enough-secret";
          }
          redis::pool pool(ex, po);
          auto o = options();
          o.block = 30s;
          queue::consumer c(pool, o, {});
          auto body = [&]() -> asio::awaitable<void> {
            auto result = co_await c.run();
            EXPECT_FALSE(result) << result.message();
            done = std::chrono::steady_clock::now();
            pool.stop();
          };
          auto watch = [&]() -> asio::awaitable<void> {
            while (!c.started())
              co_await sleep_for(5ms);
            co_await sleep_for(300ms); // waiting inside Redis by now
            stopped = std::chrono::steady_clock::now();
            c.stop();
          };
          co_await (pool.run() && body() && watch());
        },
        20s);
    auto took = done - stopped;
    EXPECT_LT(took, may_unblock ? 500ms : 2500ms)
        << (may_unblock ? "with" : "without") << " CLIENT UNBLOCK: "
        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  }
}

// Two consumers on one queue; the job runs longer than its lease. Renewal must keep the other
// consumer from taking it back: it runs once.
TEST_F(consumer_test, a_renewed_lease_keeps_a_long_job_from_running_twice) {
  test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        redis::pool pool_a(ex, pool_options()), pool_b(ex, pool_options());
        int runs = 0;
        queue::handler_map h{
            {"long",
             [&](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
               ++runs;
               co_await sleep_for(900ms); // three leases
               co_return queue::outcome::success();
             }}};
        auto o = options();
        o.lease = 300ms;
        o.name = "a";
        queue::consumer a(pool_a, o, h);
        o.name = "b";
        queue::consumer b(pool_b, o, h);
        auto body = [&]() -> asio::awaitable<void> {
          co_await enqueue_n(pool_a.commands(), 1, "long");
          auto watch = [&]() -> asio::awaitable<void> {
            while (a.stats().done + b.stats().done < 1)
              co_await sleep_for(5ms);
            co_await sleep_for(400ms); // a stolen copy would have started by now
            a.stop();
            b.stop();
          };
          // (Boost 1.81's && cannot mix two error_code results with void: wrap them.)
          auto run_a = [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await a.run()); };
          auto run_b = [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await b.run()); };
          co_await (run_a() && run_b() && watch());
          pool_a.stop();
          pool_b.stop();
        };
        co_await (pool_a.run() && pool_b.run() && body());
        EXPECT_EQ(runs, 1);
        EXPECT_EQ(a.stats().recovered + b.stats().recovered, 0u);
      },
      30s);
}

// Review finding: XREADGROUP > never delivers a pending entry again, so a malformed entry left
// by a dead consumer must go dead through recovery, not be claimed again every lease.
TEST_F(consumer_test, a_malformed_job_held_by_a_dead_consumer_goes_dead_through_recovery) {
  auto h = succeed("j");
  auto o = short_lease();
  run(
      o, h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        co_await queue::init_queue(c, "work");
        redis_.command({"XADD", "forq:{work}:stream", "*", "handler", "j", "payload", "{no"});
        redis_.command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "1", "STREAMS",
                        "forq:{work}:stream", ">"});
      },
      [](const queue::consumer& c) { return c.stats().dead == 1; });
  EXPECT_NE(redis_.command({"HVALS", "forq:{work}:dead:jobs"}).find("malformed job: payload"),
            std::string::npos);
  EXPECT_EQ(redis_.command({"XPENDING", "forq:{work}:stream", "workers"}).substr(0, 3), "[0,");
}

// Review finding: Lua's unpack() takes about 8,000 values; evicting a large backlog of old
// results in one call failed forever. tidy.lua takes at most 1,000 per HDEL and 100 a call.
TEST_F(consumer_test, a_large_backlog_of_old_results_is_worked_off_in_steps) {
  for (int batch = 0; batch < 9; ++batch) {
    // finished in 1970, 1,000 jobs: older than any keep_results
    std::vector<std::string> rpush{"RPUSH", "forq:{work}:results", "1", "1000"};
    std::vector<std::string> hset{"HSET", "forq:{work}:results:data"};
    for (int i = 0; i < 1000; ++i) {
      auto id = "old-" + std::to_string(batch * 1000 + i);
      rpush.push_back(id);
      hset.push_back(id);
      hset.push_back("{}");
    }
    redis_.command(rpush);
    redis_.command(hset);
  }
  redis_.command({"HSET", "forq:{work}:stats", "results_kept", "9000"});
  auto o = options();
  o.tidy_every = 20ms;
  run(
      o, succeed("j"), [](redis::connection& c) { return enqueue_n(c, 1, "j"); },
      [this](const queue::consumer& c) {
        return c.stats().done == 1 &&
               redis_.command({"HGET", "forq:{work}:stats", "results_kept"}) == "1";
      });
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "1");
  EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:results:data"}), "0");
  EXPECT_EQ(redis_.command({"LLEN", "forq:{work}:results"}), "3"); // <ms> 1 <id>
}

// Elements of the results index that are not forq's (written by hand, say) are dropped, and
// tidying goes on past them to the batches behind.
TEST_F(consumer_test, elements_of_the_results_index_that_are_not_forqs_are_dropped) {
  // finished in 1970: older than any keep_results
  redis_.command({"RPUSH", "forq:{work}:results", "garbage", "x", "1", "2", "old-1", "old-2"});
  redis_.command({"HSET", "forq:{work}:stats", "results_kept", "2"});
  auto o = options();
  o.tidy_every = 20ms;
  run(
      o, succeed("j"), [](redis::connection& c) { return enqueue_n(c, 1, "j"); },
      [this](const queue::consumer& c) {
        return c.stats().done == 1 && redis_.command({"LLEN", "forq:{work}:results"}) == "3";
      });
  EXPECT_EQ(redis_.command({"LINDEX", "forq:{work}:results", "1"}), "1"); // <ms> 1 <id>
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "results_kept"}), "1");
}

// Issue 4: a worker that starts before its Redis waits for it (the connection retries and logs)
// and then consumes; it never gives up on its own.
TEST_F(consumer_test, start_up_waits_for_a_redis_that_is_not_there_yet) {
  redis_.stop();
  test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        redis::pool pool(ex, pool_options());
        queue::consumer c(pool, options(), succeed("j"));
        auto body = [&]() -> asio::awaitable<void> {
          auto ec = co_await c.run();
          EXPECT_FALSE(ec) << ec.message();
          pool.stop();
        };
        auto later = [&]() -> asio::awaitable<void> {
          co_await sleep_for(500ms);
          EXPECT_EQ(c.stats().fetched, 0u);
          redis_.start();
          co_await enqueue_n(pool.commands(), 3, "j");
          while (c.stats().done < 3)
            co_await sleep_for(5ms);
          c.stop();
        };
        co_await (pool.run() && body() && later());
      },
      30s);
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "completed"}), "3");
}

// Review finding: a delayed record that is not a JSON object stopped every promotion behind it.
TEST_F(consumer_test, a_corrupt_delayed_record_goes_dead_and_promotion_goes_on) {
  queue::handler_map h{{"j", counting([](auto&, int) { return queue::outcome::success(); })}};
  run(
      options(), h,
      [&](redis::connection& c) -> asio::awaitable<void> {
        co_await queue::init_queue(c, "work");
        redis_.command({"ZADD", "forq:{work}:delayed", "1", "broken", "2", "good"});
        redis_.command({"HSET", "forq:{work}:delayed:jobs", "broken", "[not an object", "good",
                        R"({"id":"good","handler":"j","payload":"{}","attempt":"1"})"});
      },
      [](const queue::consumer& c) { return c.stats().done == 1; });
  EXPECT_EQ(calls_.count("good"), 1u);
  EXPECT_NE(redis_.command({"HGET", "forq:{work}:dead:jobs", "broken"}).find("not a JSON object"),
            std::string::npos);
  EXPECT_EQ(redis_.command({"ZCARD", "forq:{work}:delayed"}), "0");
}

} // namespace
