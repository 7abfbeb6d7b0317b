// Job control against a real redis-server (docs/job-control.md): cancel a job wherever it stands
// (ready, delayed, waiting for a retry, running, held by a dead worker, ended), and wait for a
// job's end (before, during, after; every way it can end).
#include "forq/client.hpp"
#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "support/async_test.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <map>
#include <set>

namespace {

namespace asio = boost::asio;
using namespace forq;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::test::sleep_for;

class job_control_test : public forq::test::redis_test {
 protected:
  std::map<std::string, int> calls_; // attempts started, per job id

  static queue::consumer_options options() {
    queue::consumer_options o;
    o.queue = "work";
    o.block = 100ms;
    o.retry.backoff = 20ms;
    o.retry.exponential = false;
    o.cancel_check_every = 100ms;
    return o;
  }

  // Runs `body` with a client on a connection of its own and a consumer of "work" running
  // `handlers` on a pool of its own (a second worker, as far as Redis can tell).
  void with_consumer(queue::consumer_options o, queue::handler_map handlers,
                     std::function<asio::awaitable<void>(client&, queue::consumer&)> body,
                     std::function<asio::awaitable<void>(client&)> before = {}) {
    test::run_async(
        [&]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          redis::pool pool(ex, pool_options());
          redis::pool caller(ex, pool_options());
          queue::consumer c(pool, o, handlers);
          client cl(caller.commands());
          bool started = false;
          auto consume = [&]() -> asio::awaitable<void> {
            while (!started)
              co_await sleep_for(5ms);
            auto r = co_await c.run();
            EXPECT_FALSE(r) << r.message();
            pool.stop();
          };
          auto drive = [&]() -> asio::awaitable<void> {
            co_await queue::init_queue(caller.commands(), "work");
            if (before) co_await before(cl);
            started = true;
            co_await body(cl, c);
            c.stop();
            caller.stop();
          };
          co_await (pool.run() && caller.run() && consume() && drive());
        },
        60s);
  }

  queue::handler counted(queue::handler h) {
    return [this, h](const queue::delivered_job& j,
                     queue::context& ctx) -> asio::awaitable<queue::outcome> {
      ++calls_[j.id];
      co_return co_await h(j, ctx);
    };
  }

  static queue::new_job job(std::string handler, std::optional<std::string> id = std::nullopt) {
    queue::new_job j;
    j.handler = std::move(handler);
    j.id = std::move(id);
    return j;
  }

  // Until the job is in `state` (or 5 s).
  static asio::awaitable<std::optional<job_info>> until_state(client& c, std::string id,
                                                              std::string state) {
    for (int i = 0; i < 500; ++i) {
      auto j = co_await c.get_job("work", id);
      if (j && *j && (*j)->state == state) co_return **j;
      co_await sleep_for(10ms);
    }
    co_return std::nullopt;
  }
};

// Ready, delayed and retry-waiting jobs that are cancelled never start, over many rounds; the
// rest run; the queue's figures count them.
TEST_F(job_control_test, waiting_jobs_that_are_cancelled_never_start) {
  queue::handler_map h{
      {"ok",
       counted([](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
         co_return queue::outcome::success();
       })},
      {"flaky",
       counted([](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
         co_return queue::outcome::retry_later("not yet", 400ms);
       })}};
  std::set<std::string> cancelled, kept;
  with_consumer(options(), h, [&](client& c, queue::consumer& con) -> asio::awaitable<void> {
    co_await c.pause("work"); // the ready jobs stay ready while they are cancelled
    for (int round = 0; round < 20; ++round) {
      auto a = co_await c.enqueue("work", job("ok"));
      auto b = co_await c.enqueue("work", job("ok", "keep-" + std::to_string(round)));
      auto d = job("ok", "later-" + std::to_string(round));
      d.run_at_ms = queue::epoch_ms() + 300;
      auto dl = co_await c.enqueue("work", d);
      EXPECT_TRUE(a && b && dl);
      for (const auto& id : {a->id, dl->id}) {
        auto r = co_await c.cancel("work", id, "test", "round " + std::to_string(round));
        EXPECT_TRUE(r && *r && (*r)->outcome == "cancelled") << id;
        cancelled.insert(id);
      }
      kept.insert(b->id);
    }
    auto s = co_await c.stats("work");
    EXPECT_TRUE(s);
    EXPECT_EQ(s->ready, 20);  // the cancelled ready entries are not counted as ready
    EXPECT_EQ(s->delayed, 0); // nor the delayed ones as delayed
    EXPECT_EQ(s->cancelled, 40);
    co_await c.resume("work");
    // A job waiting for its retry: its first attempt fails, then it is cancelled.
    auto f = co_await c.enqueue("work", job("flaky", "flaky"));
    EXPECT_TRUE(f);
    co_await until_state(c, "flaky", "delayed");
    auto r = co_await c.cancel("work", "flaky", "test", "");
    EXPECT_TRUE(r && *r && (*r)->outcome == "cancelled");
    for (int i = 0; i < 300 && con.stats().done < 20; ++i)
      co_await sleep_for(10ms);
    co_await sleep_for(800ms); // past the retry's time and the delayed jobs' time
    auto one = co_await c.get_job("work", *cancelled.begin());
    EXPECT_TRUE(one && *one);
    EXPECT_EQ((*one)->state, "cancelled");
    EXPECT_EQ((*one)->cancelled_by, "test");
    EXPECT_TRUE((*one)->finished_ms);
  });
  for (const auto& id : cancelled)
    EXPECT_EQ(calls_.count(id), 0u) << id << " started";
  for (const auto& id : kept)
    EXPECT_EQ(calls_[id], 1) << id;
  EXPECT_EQ(calls_["flaky"], 1); // never again after the cancel
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "cancelled"}), "41");
}

// A running job hears its cancel within a second (here the consumer looks every 100 ms), ends
// cancelled with who and why, and is never retried; a waiter wakes at once.
TEST_F(job_control_test, a_running_job_is_told_and_ends_cancelled) {
  bool heard = false;
  std::string reason;
  queue::handler_map h{
      {"long", counted([&](const queue::delivered_job&,
                           queue::context& ctx) -> asio::awaitable<queue::outcome> {
         co_await ctx.until_cancelled();
         heard = true;
         reason = ctx.cancel_reason();
         // Whatever it says now, the job ends cancelled.
         co_return queue::outcome::success("\"finished anyway\"");
       })}};
  auto o = options();
  o.retry.max_attempts = 5;
  with_consumer(o, h, [&](client& c, queue::consumer&) -> asio::awaitable<void> {
    auto j = job("long", "long-1");
    j.waitable = true;
    EXPECT_TRUE(co_await c.enqueue("work", j));
    EXPECT_TRUE(co_await until_state(c, "long-1", "active"));
    const auto asked = std::chrono::steady_clock::now();
    auto r = co_await c.cancel("work", "long-1", "alice", "the customer left");
    EXPECT_TRUE(r && *r);
    EXPECT_EQ((*r)->outcome, "requested");
    EXPECT_TRUE((*r)->job.cancel_requested || (*r)->job.state == "cancelled");
    auto again = co_await c.cancel("work", "long-1", "bob", "");
    EXPECT_TRUE(again && *again);
    if (again && *again && (*again)->job.state != "cancelled") {
      EXPECT_EQ((*again)->outcome, "already_requested");
    }
    auto end = co_await c.wait("work", "long-1", 5s);
    const auto took = std::chrono::steady_clock::now() - asked;
    EXPECT_LT(took, 1s);
    EXPECT_TRUE(end && *end);
    EXPECT_EQ((*end)->state, "cancelled");
    EXPECT_EQ((*end)->cancelled_by, "alice");
    EXPECT_EQ((*end)->cancel_reason, "the customer left");
    EXPECT_FALSE((*end)->result);
    co_await sleep_for(300ms); // no retry comes
    auto later = co_await c.cancel("work", "long-1", "carol", "");
    EXPECT_TRUE(later && *later && (*later)->outcome == "terminal");
  });
  EXPECT_TRUE(heard);
  EXPECT_EQ(reason, "cancelled by alice: the customer left");
  EXPECT_EQ(calls_["long-1"], 1);
  EXPECT_EQ(redis_.command({"HLEN", "forq:{work}:cancel"}), "0"); // the mark is gone with it
}

// A worker killed while it held a job: the job is cancelled meanwhile, and stall recovery ends
// it cancelled instead of running it again.
TEST_F(job_control_test, a_cancelled_job_of_a_dead_worker_is_not_run_again) {
  queue::handler_map h{{"j", counted([](const queue::delivered_job&,
                                        queue::context&) -> asio::awaitable<queue::outcome> {
                          co_return queue::outcome::success();
                        })}};
  auto o = options();
  o.lease = 300ms;
  with_consumer(
      o, h,
      [&](client& c, queue::consumer&) -> asio::awaitable<void> {
        auto r = co_await c.cancel("work", "held", "ops", "stuck");
        EXPECT_TRUE(r) << r.error().message();
        if (!r || !*r) co_return;
        EXPECT_EQ((*r)->outcome, "requested");
        auto end = co_await c.wait("work", "held", 5s);
        EXPECT_TRUE(end && *end);
        EXPECT_EQ((*end)->state, "cancelled");
        EXPECT_EQ((*end)->cancel_reason, "stuck");
      },
      [&](client& c) -> asio::awaitable<void> {
        EXPECT_TRUE(co_await c.enqueue("work", job("j", "held")));
        // A consumer "ghost" takes it and never answers (a worker killed with -9).
        redis_.command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "1", "STREAMS",
                        "forq:{work}:stream", ">"});
      });
  EXPECT_EQ(calls_.count("held"), 0u);
}

// A wait returns at once for a job that ended before it began; wakes for each way a waitable
// job ends (completed, dead); and for a job that is not waitable, by looking again.
TEST_F(job_control_test, waits_see_every_end_and_never_hang) {
  queue::handler_map h{{"ok", counted([](const queue::delivered_job& j,
                                         queue::context&) -> asio::awaitable<queue::outcome> {
                          co_await sleep_for(200ms);
                          co_return queue::outcome::success("{\"for\":\"" + j.id + "\"}");
                        })},
                       {"bad", counted([](const queue::delivered_job&,
                                          queue::context&) -> asio::awaitable<queue::outcome> {
                          co_await sleep_for(200ms);
                          co_return queue::outcome::failure("broken");
                        })}};
  with_consumer(options(), h, [&](client& c, queue::consumer&) -> asio::awaitable<void> {
    auto waitable = [](std::string handler, std::string id) {
      auto j = job(std::move(handler), std::move(id));
      j.waitable = true;
      return j;
    };
    EXPECT_TRUE(co_await c.enqueue("work", waitable("ok", "w-ok")));
    EXPECT_TRUE(co_await c.enqueue("work", waitable("bad", "w-bad")));
    EXPECT_TRUE(co_await c.enqueue("work", job("ok", "plain")));
    auto t0 = std::chrono::steady_clock::now();
    auto ok = co_await c.wait("work", "w-ok", 5s);
    EXPECT_TRUE(ok && *ok);
    EXPECT_EQ((*ok)->state, "completed");
    EXPECT_EQ((*ok)->result, "{\"for\":\"w-ok\"}"); // its own result, not another's
    auto bad = co_await c.wait("work", "w-bad", 5s);
    EXPECT_TRUE(bad && *bad);
    EXPECT_EQ((*bad)->state, "dead");
    auto plain = co_await c.wait("work", "plain", 5s);
    EXPECT_TRUE(plain && *plain);
    EXPECT_EQ((*plain)->state, "completed");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    // Ended before the wait began: at once.
    auto t1 = std::chrono::steady_clock::now();
    auto again = co_await c.wait("work", "w-ok", 5s);
    EXPECT_TRUE(again && *again && (*again)->state == "completed");
    EXPECT_LT(std::chrono::steady_clock::now() - t1, 200ms);
    // Nothing of that id: at once, nothing.
    auto none = co_await c.wait("work", "never-enqueued", 5s);
    EXPECT_TRUE(none && !*none);
    // Still running when the wait ends: the job as it stands.
    EXPECT_TRUE(co_await c.enqueue("work", waitable("ok", "slow")));
    auto t2 = std::chrono::steady_clock::now();
    auto slow = co_await c.wait("work", "slow", 50ms);
    EXPECT_TRUE(slow && *slow);
    EXPECT_NE((*slow)->state, "completed");
    EXPECT_LT(std::chrono::steady_clock::now() - t2, 1s);
    auto ended = co_await c.wait("work", "slow", 5s);
    EXPECT_TRUE(ended && *ended && (*ended)->state == "completed");
  });
}

// A cancel racing the job's end: every job ends exactly once, completed or cancelled, never
// both, never neither; the queue's totals add up.
TEST_F(job_control_test, a_cancel_racing_completion_gives_exactly_one_end) {
  constexpr int n = 200;
  queue::handler_map h{
      {"short", counted([](const queue::delivered_job& j,
                           queue::context& ctx) -> asio::awaitable<queue::outcome> {
         // 0 to 19 ms, then done; told of a cancel meanwhile, it stops.
         const auto ms = std::hash<std::string>{}(j.id) % 20;
         co_await sleep_for(std::chrono::milliseconds(ms));
         if (ctx.cancelled()) co_return queue::outcome::cancelled(ctx.cancel_reason());
         co_return queue::outcome::success();
       })}};
  auto o = options();
  o.cancel_check_every = 5ms;
  o.concurrency = 16;
  std::map<std::string, std::string> outcome_of;
  with_consumer(o, h, [&](client& c, queue::consumer&) -> asio::awaitable<void> {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto r = co_await c.enqueue("work", job("short", "race-" + std::to_string(i)));
      EXPECT_TRUE(r);
      ids.push_back(r->id);
    }
    for (const auto& id : ids) { // while they run, finish, or wait their turn
      auto r = co_await c.cancel("work", id, "test", "");
      EXPECT_TRUE(r && *r) << id;
      if (r && *r) outcome_of[id] = (*r)->outcome;
      co_await sleep_for(1ms);
    }
    for (const auto& id : ids) {
      auto end = co_await c.wait("work", id, 5s);
      EXPECT_TRUE(end && *end) << id;
      if (!end || !*end) continue;
      const auto& st = (*end)->state;
      EXPECT_TRUE(st == "completed" || st == "cancelled") << id << " " << st;
      // What the cancel answered agrees with the end: a job cancelled before it ran, or one
      // that had ended, cannot end the other way.
      if (outcome_of[id] == "cancelled") {
        EXPECT_EQ(st, "cancelled") << id;
      }
      if (outcome_of[id] == "terminal") {
        EXPECT_EQ(st, "completed") << id;
      }
    }
    auto s = co_await c.stats("work");
    EXPECT_TRUE(s);
    EXPECT_EQ(s->completed + s->cancels, n);
    EXPECT_EQ(s->cancelled, s->cancels);
  });
  for (const auto& [id, runs] : calls_)
    EXPECT_EQ(runs, 1) << id << " ran again";
  const auto done = redis_.command({"HGET", "forq:{work}:stats", "completed"});
  const auto cancelled = redis_.command({"ZCARD", "forq:{work}:cancelled"});
  EXPECT_EQ(std::stoi(done == "(nil)" ? "0" : done) + std::stoi(cancelled), n);
}

// A queue no worker has started on (no consumer group yet): its ready job is cancelled all the
// same, and its figures say so.
TEST_F(job_control_test, a_job_of_a_queue_no_worker_started_on_is_cancelled) {
  with_consumer(options(), {}, [&](client& c, queue::consumer&) -> asio::awaitable<void> {
    auto r = co_await c.enqueue("fresh", job("ok"));
    EXPECT_TRUE(r);
    auto cancelled = co_await c.cancel("fresh", r->id, "test", "before any worker");
    EXPECT_TRUE(cancelled) << cancelled.error().message();
    EXPECT_TRUE(cancelled && *cancelled && (*cancelled)->outcome == "cancelled");
    auto s = co_await c.stats("fresh");
    EXPECT_TRUE(s);
    EXPECT_EQ(s->ready, 0);
    EXPECT_EQ(s->cancelled, 1);
  });
}

// A queue's events (docs/job-control.md, "Events"): none while off; once on, each job's story
// in order, whichever way it is enqueued (plain, with an id, with a priority, delayed) and
// however it ends (completed with its result, dead after a retry, cancelled before it ran).
TEST_F(job_control_test, events_tell_each_job_s_story_in_order) {
  queue::handler_map h{
      {"ok",
       [](const queue::delivered_job&, queue::context& ctx) -> asio::awaitable<queue::outcome> {
         EXPECT_TRUE(ctx.progress(R"({"step":1})"));
         co_await sleep_for(150ms); // past the 100 ms between progress writes
         co_return queue::outcome::success(R"({"n":7})");
       }},
      {"bad", [](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
         co_return queue::outcome::retry_later("not today");
       }}};
  with_consumer(options(), h, [&](client& c, queue::consumer&) -> asio::awaitable<void> {
    // Off: nothing is written.
    auto quiet = co_await c.enqueue("work", job("ok"));
    EXPECT_TRUE(quiet);
    auto waited = co_await c.wait("work", quiet->id, 5s);
    EXPECT_TRUE(waited && *waited && (*waited)->state == "completed");
    auto none = co_await c.events("work", "0", 100);
    EXPECT_TRUE(none && none->empty());

    EXPECT_TRUE(co_await c.set_events("work", 1000));
    EXPECT_EQ((co_await c.set_events("work", 5)).error(), errc::invalid_value);
    co_await sleep_for(1100ms); // what producers and the consumer knew is a second old
    auto plain = co_await c.enqueue("work", job("ok"));
    std::vector<queue::new_job> two; // (no braced list: GCC 12 in a coroutine)
    two.push_back(job("ok"));
    two.push_back(job("ok"));
    redis_.command({"SCRIPT", "FLUSH"}); // the pipeline's EVALSHAs meet -NOSCRIPT, and go again
    auto many = co_await c.enqueue_many("work", two); // pipelined
    EXPECT_TRUE(many && many->size() == 2 && (*many)[0].added && (*many)[1].added);
    auto prio = job("ok", "prio-1");
    prio.priority = 3;
    auto high = co_await c.enqueue("work", prio);
    auto unprio = job("ok");
    unprio.priority = 5;
    auto generated = co_await c.enqueue("work", unprio);
    auto failing = job("bad", "bad-1");
    failing.max_attempts = 2;
    auto dead = co_await c.enqueue("work", failing);
    auto later = job("ok", "later-1");
    later.run_at_ms = queue::epoch_ms() + 60000;
    auto delayed = co_await c.enqueue("work", later);
    EXPECT_TRUE(plain && high && generated && dead && delayed);
    auto cancelled = co_await c.cancel("work", "later-1", "test", "changed my mind");
    EXPECT_TRUE(cancelled && *cancelled && (*cancelled)->outcome == "cancelled");
    std::vector<std::string> ran_ids{plain->id, "prio-1", generated->id, "bad-1"};
    ran_ids.push_back((*many)[0].added->id);
    ran_ids.push_back((*many)[1].added->id);
    for (const auto& id : ran_ids)
      EXPECT_TRUE(co_await c.wait("work", id, 10s));
    co_await sleep_for(100ms); // the last events go out as the jobs end

    auto all = co_await c.events("work", "0", 1000);
    EXPECT_TRUE(all) << all.error().message();
    std::map<std::string, std::vector<queue_event>> story;
    for (const auto& e : *all)
      story[e.job_id].push_back(e);
    auto kinds = [&](const std::string& id) {
      std::vector<std::string> k;
      for (const auto& e : story[id])
        k.push_back(e.event);
      return k;
    };
    using list = std::vector<std::string>;
    const list ran{"added", "active", "progress", "completed"};
    EXPECT_EQ(kinds(plain->id), ran);
    EXPECT_EQ(kinds((*many)[0].added->id), ran);
    EXPECT_EQ(kinds((*many)[1].added->id), ran);
    EXPECT_EQ(kinds("prio-1"), ran);
    EXPECT_EQ(kinds(generated->id), ran) << "a generated id with a priority: " << generated->id;
    EXPECT_EQ(kinds("bad-1"),
              (list{"added", "active", "failed", "retrying", "active", "failed", "dead"}));
    EXPECT_EQ(kinds("later-1"), (list{"added", "cancelled"}));
    EXPECT_TRUE(story[quiet->id].empty()) << "written while events were off";
    auto json = story[plain->id].back().to_json();
    EXPECT_EQ(boost::json::serialize(json.at("result")), R"({"n":7})");
    EXPECT_EQ(json.at("attempt"), 1);
    EXPECT_EQ(boost::json::serialize(story[plain->id][2].to_json().at("progress")),
              R"({"step":1})");
    auto first_fail = story["bad-1"][2].to_json();
    EXPECT_EQ(first_fail.at("reason"), "not today");
    EXPECT_EQ(first_fail.at("next"), "retrying");
    EXPECT_EQ(story["bad-1"][5].to_json().at("next"), "dead");
    auto gone = story["later-1"][1].to_json();
    EXPECT_EQ(gone.at("by"), "test");
    EXPECT_EQ(gone.at("reason"), "changed my mind");
    EXPECT_TRUE(story["later-1"][0].to_json().contains("run_at_ms"));
    // Reading goes on after an id; the newest come oldest first.
    auto rest = co_await c.events("work", all->front().event_id, 1000);
    EXPECT_TRUE(rest && rest->size() + 1 == all->size());
    auto last = co_await c.last_events("work", 2);
    EXPECT_TRUE(last && last->size() == 2 && last->back().event_id == all->back().event_id);
    auto s = co_await c.stats("work");
    EXPECT_TRUE(s && s->events_max == 1000);
    // Off again: the stream is gone, and nothing more is written.
    EXPECT_TRUE(co_await c.set_events("work", std::nullopt));
    co_await sleep_for(1100ms);
    auto after_off = co_await c.enqueue("work", job("ok"));
    EXPECT_TRUE(co_await c.wait("work", after_off->id, 5s));
    co_await sleep_for(100ms);
    auto empty = co_await c.events("work", "0", 100);
    EXPECT_TRUE(empty && empty->empty()) << (empty ? empty->size() : 0);
  });
}

} // namespace
