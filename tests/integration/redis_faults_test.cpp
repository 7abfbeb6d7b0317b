// Issue 13 with the real binary and real redis-servers: a Redis that comes back empty, is
// flushed, loses its scripts, is full, evicts, is a replica, is down, or refuses the password;
// job ids unique across priorities; records that stay valid JSON whatever bytes arrive; an API
// that is not open to the network by accident. Every test counts what it asserts.
#include "forq/client.hpp"
#include "queue/job.hpp"
#include "support/async_test.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using forq::test::child_process;
using forq::test::run;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

const std::string forq_bin = FORQ_BINARY;

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = steady::now() + limit;
  while (!done()) {
    if (steady::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool parses(const std::string& text) {
  boost::system::error_code ec;
  json::parse(text, ec); // refuses text that is not UTF-8
  return !ec;
}

long long ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

class faults_test : public forq::test::redis_test {
 protected:
  std::unique_ptr<child_process> serve(const forq::test::redis_server& on,
                                       std::vector<std::string> extra = {},
                                       bool wait_consuming = true) {
    std::vector<std::string> argv{forq_bin, "serve",      "--redis",
                                  on.url(), "--data-dir", (dir_ / "data").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
      argv.push_back("--listen");
      argv.push_back("127.0.0.1:0");
    }
    auto p = std::make_unique<child_process>(argv);
    EXPECT_TRUE(p->wait_for_err("master ready")) << p->err();
    port_ = forq::test::listening_port(p->err());
    if (wait_consuming) {
      EXPECT_TRUE(p->wait_for_err("consuming")) << p->err();
    }
    return p;
  }

  // `forq enqueue` of one job; returns its id ("" when refused: then `last_` says why).
  std::string enqueue(const std::string& url, const std::string& payload,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{forq_bin, "enqueue", "--redis", url};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(payload);
    last_ = run(argv);
    if (last_.exit_code != 0) return "";
    return last_.out.substr(0, last_.out.find_first_of("\t\n"));
  }

  // n jobs of `handler` in one `forq enqueue` (NDJSON on stdin): one process, so the time a test
  // measures is forq's, not the start-up of ten commands. Returns their ids.
  std::vector<std::string> enqueue_many(const std::string& url, int n, const std::string& handler,
                                        const std::string& key) {
    std::string input;
    for (int i = 0; i < n; ++i)
      input += "{\"" + key + "\":" + std::to_string(i) + "}\n";
    forq::test::write_file(dir_ / "many.ndjson", input);
    auto r = run({"/bin/sh", "-c",
                  forq_bin + " enqueue --redis " + url + " --handler " + handler + " < " +
                      (dir_ / "many.ndjson").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      ids.push_back(line);
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
    return ids;
  }

  bool has_result(const std::string& id) {
    return redis_.command({"HEXISTS", "forq:{default}:results:data", id}) == "1";
  }
  bool all_have_results(const std::vector<std::string>& ids) {
    return std::all_of(ids.begin(), ids.end(),
                       [&](const std::string& id) { return !id.empty() && has_result(id); });
  }

  static void stop(child_process& p) {
    p.signal(SIGTERM);
    EXPECT_TRUE(p.wait_for(20s));
  }

  forq::test::temp_dir dir_;
  int port_ = 0;
  forq::test::run_result last_;
};

// Redis restarted with no persistence: forq initialises the queue again at once and consumes
// what is enqueued afterwards; one warning for the event, then quiet (no error loop).
TEST_F(faults_test, a_redis_restarted_empty_is_initialised_again_and_consumed) {
  auto forq = serve(redis_, {"--workers", "2"});
  ASSERT_FALSE(enqueue(redis_.url(), "{\"before\":1}", {"--handler", "echo"}).empty());
  ASSERT_TRUE(wait_until(
      [&] {
        return redis_.command({"HGET", "forq:{default}:stats", "completed"}) == "1";
      },
      5s));

  redis_.stop();
  redis_.start(); // same port, empty
  auto back = steady::now();
  auto ids = enqueue_many(redis_.url(), 10, "echo", "after");
  ASSERT_TRUE(wait_until([&] { return all_have_results(ids); }, 2s)) << forq->err();
  auto recovered_ms = ms_since(back);
  RecordProperty("recovered_ms", static_cast<int>(recovered_ms));
  EXPECT_LT(recovered_ms, 2000);
  EXPECT_EQ(count(forq->err(), "its keys are gone from Redis"), 1u) << forq->err();
  EXPECT_EQ(redis_.command({"SISMEMBER", "forq:queues", "default"}), "1");

  // Quiet from here: no line per second about groups or tidying.
  auto before = forq->err().size();
  std::this_thread::sleep_for(5s);
  auto later = forq->err().substr(before);
  EXPECT_EQ(count(later, "\n"), 0u) << later;
  stop(*forq);
}

// FLUSHALL in the middle of a drain: jobs running then finish quietly, jobs enqueued after all
// complete within 2 s, one warning.
TEST_F(faults_test, a_flushall_mid_drain_heals_at_once) {
  auto forq = serve(redis_, {"--workers", "2", "--concurrency", "4"});
  std::string input;
  for (int i = 0; i < 200; ++i)
    input += "{\"ms\":20}\n";
  forq::test::write_file(dir_ / "in.ndjson", input);
  auto r = run({"/bin/sh", "-c",
                forq_bin + " enqueue --redis " + redis_.url() + " --handler sleep < " +
                    (dir_ / "in.ndjson").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::this_thread::sleep_for(150ms); // 200 x 20 ms over 8 slots: about half a second
  EXPECT_EQ(redis_.command({"FLUSHALL"}), "OK");
  auto flushed = steady::now();
  auto ids = enqueue_many(redis_.url(), 5, "echo", "n");
  ASSERT_TRUE(wait_until([&] { return all_have_results(ids); }, 2s)) << forq->err();
  RecordProperty("recovered_ms", static_cast<int>(ms_since(flushed)));
  EXPECT_EQ(count(forq->err(), "its keys are gone from Redis"), 1u) << forq->err();
  auto before = forq->err().size();
  std::this_thread::sleep_for(5s);
  auto later = forq->err().substr(before);
  EXPECT_EQ(count(later, " warn "), 0u) << later;
  EXPECT_EQ(count(later, " error "), 0u) << later;

  // Again with every consumer idle, blocked inside Redis on the streams the flush deletes
  // (Redis 7 answers their reads -UNBLOCKED).
  EXPECT_EQ(redis_.command({"FLUSHALL"}), "OK");
  flushed = steady::now();
  auto idle_id = enqueue(redis_.url(), "{\"idle\":1}", {"--handler", "echo"});
  ASSERT_TRUE(wait_until([&] { return has_result(idle_id); }, 2s)) << forq->err();
  RecordProperty("idle_recovered_ms", static_cast<int>(ms_since(flushed)));
  EXPECT_EQ(count(forq->err(), "its keys are gone from Redis"), 2u) << forq->err();
  EXPECT_EQ(count(forq->err(), " error "), 0u) << forq->err();
  stop(*forq);
}

// SCRIPT FLUSH: the scripts are loaded again on the next call; the keys are intact, so nothing
// is "gone" and nothing is said.
TEST_F(faults_test, a_script_flush_is_absorbed_without_a_word) {
  auto forq = serve(redis_);
  EXPECT_EQ(redis_.command({"SCRIPT", "FLUSH"}), "OK");
  auto flushed = steady::now();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(enqueue(redis_.url(), "{\"d\":" + std::to_string(i) + "}",
                          {"--handler", "echo", "--delay-ms", "100"}));
    ids.push_back(enqueue(redis_.url(), "{\"u\":" + std::to_string(i) + "}",
                          {"--handler", "echo", "--id", "unique-" + std::to_string(i)}));
  }
  ASSERT_TRUE(wait_until([&] { return all_have_results(ids); }, 2s)) << forq->err();
  RecordProperty("recovered_ms", static_cast<int>(ms_since(flushed)));
  EXPECT_EQ(count(forq->err(), "keys are gone"), 0u);
  EXPECT_EQ(count(forq->err(), " error "), 0u) << forq->err();
  stop(*forq);
}

// Two entries with one entry id on two priorities (the same millisecond, one MULTI) are two
// jobs with two ids, two results, and `forq job` tells them apart. So do jobs added by
// forq::client in one pipeline.
TEST_F(faults_test, jobs_added_in_one_multi_to_two_priorities_have_their_own_ids) {
  constexpr int pairs = 50;
  std::vector<std::pair<std::string, std::string>> entry_ids; // (p0, p5) per pair
  std::vector<std::string> client_ids;
  forq::test::run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    forq::redis::connection conn(ex, pool_options().connection);
    auto test = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < pairs; ++i) {
        // The first pair names its entry id (as any producer may): the same in both streams
        // for certain. The others let Redis choose, in one MULTI: the same whenever both
        // XADDs run in one millisecond.
        const std::string at = i == 0 ? "1000-0" : "*";
        forq::redis::request multi;
        multi.push("MULTI");
        multi.push("XADD", "forq:{default}:stream", at, "handler", "echo", "payload",
                   "{\"pair\":" + std::to_string(i) + ",\"p\":0}");
        multi.push("XADD", "forq:{default}:stream:p5", at, "handler", "echo", "payload",
                   "{\"pair\":" + std::to_string(i) + ",\"p\":5}");
        multi.push("EXEC");
        auto r = co_await conn.exec(multi);
        EXPECT_TRUE(r);
        if (!r) co_return;
        const auto& ids = (*r)[3].elements();
        entry_ids.emplace_back(ids[0].str(), ids[1].str());
      }
      forq::client c(conn);
      std::vector<forq::queue::new_job> jobs;
      for (int i = 0; i < 2 * pairs; ++i) {
        forq::queue::new_job j;
        j.handler = "echo";
        j.priority = i % 2 ? 5 : 0;
        j.payload = "{\"client\":" + std::to_string(i) + "}";
        jobs.push_back(j);
      }
      auto added = co_await c.enqueue_many("default", jobs);
      EXPECT_TRUE(added);
      if (added)
        for (const auto& o : *added)
          client_ids.push_back(o.added ? o.added->id : "");
      conn.stop();
    };
    co_await (conn.run() && test());
  });
  ASSERT_EQ(entry_ids.size(), std::size_t(pairs));
  // The collision this test is about: one entry id on two priorities.
  std::size_t same = 0;
  for (const auto& [a, b] : entry_ids)
    same += a == b;
  EXPECT_GE(same, 1u);
  RecordProperty("pairs_with_one_entry_id", static_cast<int>(same));
  std::set<std::string> distinct(client_ids.begin(), client_ids.end());
  EXPECT_EQ(distinct.size(), client_ids.size());
  for (std::size_t i = 1; i < client_ids.size(); i += 2)
    EXPECT_TRUE(client_ids[i].ends_with("-p5")) << client_ids[i];

  auto forq = serve(redis_);
  ASSERT_TRUE(wait_until(
      [&] {
        return redis_.command({"HGET", "forq:{default}:stats", "completed"}) ==
               std::to_string(4 * pairs);
      },
      10s))
      << forq->err();
  EXPECT_EQ(redis_.command({"HLEN", "forq:{default}:results:data"}), std::to_string(4 * pairs));
  for (int i = 0; i < pairs; i += 7) { // pair 0 (the certain collision) among them
    for (int p : {0, 5}) {
      auto id = forq::queue::first_attempt_id(p ? entry_ids[i].second : entry_ids[i].first, p);
      auto shown = run({forq_bin, "job", "--redis", redis_.url(), "--json", id});
      ASSERT_EQ(shown.exit_code, 0) << shown.err;
      auto o = json::parse(shown.out).as_object();
      EXPECT_EQ(o.at("state").as_string(), "completed") << shown.out;
      const auto& payload = o.at("result").as_object(); // echo's result is its payload
      EXPECT_EQ(payload.at("pair").as_int64(), i) << shown.out;
      EXPECT_EQ(payload.at("p").as_int64(), p) << shown.out;
    }
  }
  stop(*forq);
}

// A queue written by the previous release (schema 2) is upgraded in place by the first worker of
// this one, said once; a later start finds schema 3 and says nothing more.
TEST_F(faults_test, a_schema_2_queue_is_upgraded_in_place) {
  EXPECT_EQ(redis_.command({"HSET", "forq:{default}:meta", "schema", "2", "paused", "0"}), "2");
  auto forq = serve(redis_);
  ASSERT_TRUE(wait_until(
      [&] {
        return redis_.command({"HGET", "forq:{default}:meta", "schema"}) == "3";
      },
      5s));
  auto id = enqueue(redis_.url(), "{}", {"--handler", "echo", "--priority", "5"});
  EXPECT_TRUE(id.ends_with("-p5")) << id;
  ASSERT_TRUE(wait_until([&] { return has_result(id); }, 5s)) << forq->err();
  EXPECT_EQ(count(forq->err(), "protocol schema 2 upgraded to 3"), 1u) << forq->err();
  stop(*forq);
  auto again = serve(redis_);
  EXPECT_EQ(count(again->err(), "upgraded"), 0u) << again->err();
  stop(*again);
}

// Bytes that are not UTF-8 in a foreign job: dead with a reason, every record valid JSON for the
// CLI and the API, and `forq dead retry` sends the bytes back as they came.
TEST_F(faults_test, bytes_that_are_not_utf8_never_make_a_record_that_is_not_json) {
  const std::string bad = "\xff\xfe";
  EXPECT_NE(redis_.command({"XADD", "forq:{default}:stream", "*", "handler", "echo", "payload",
                            "\"" + bad + "\""}),
            "");
  EXPECT_NE(redis_.command({"XADD", "forq:{default}:stream", "*", "handler", bad, "payload", "{}"}),
            "");
  EXPECT_NE(redis_.command({"XADD", "forq:{default}:stream", "*", "id", bad, "handler", "echo",
                            "payload", "{}"}),
            "");
  EXPECT_NE(redis_.command({"XADD", "forq:{default}:stream", "*", "handler", "fail", "payload",
                            "{}", "max_attempts", "1", "note", "x" + bad}),
            "");
  auto forq = serve(redis_);
  ASSERT_TRUE(wait_until(
      [&] {
        return redis_.command({"ZCARD", "forq:{default}:dead"}) == "4";
      },
      5s))
      << forq->err();
  // Each record parses (Boost.JSON refuses text that is not UTF-8).
  auto ids = run({forq_bin, "dead", "list", "--redis", redis_.url()});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  EXPECT_EQ(count(ids.out, "\t?\n"), 0u) << ids.out; // every reason readable
  EXPECT_NE(ids.out.find("payload is not JSON"), std::string::npos) << ids.out;
  EXPECT_NE(ids.out.find("is not allowed"), std::string::npos) << ids.out;
  EXPECT_NE(ids.out.find("id is not UTF-8 text"), std::string::npos) << ids.out;
  auto listed = run({forq_bin, "dead", "list", "--json", "--redis", redis_.url()});
  ASSERT_EQ(listed.exit_code, 0);
  ASSERT_TRUE(parses(listed.out)) << listed.out;
  std::string failed_id;
  const auto listed_v = json::parse(listed.out);
  for (const auto& d : listed_v.as_array()) {
    const auto& job = d.as_object(); // the one shape of a job (forq job --json)
    EXPECT_EQ(job.at("state"), "dead") << json::serialize(d);
    EXPECT_TRUE(job.contains("reason")) << json::serialize(d);
    if (job.contains("fields") && job.at("fields").as_object().contains("note"))
      failed_id = std::string(job.at("id").as_string());
  }
  auto api = forq::test::http_call(port_, "GET", "/v1/queues/default/dead");
  EXPECT_EQ(api.status, 200);
  EXPECT_TRUE(parses(api.body)) << api.body;
  // Retry the one that failed with a bad byte in an extra field: it comes back as it came.
  ASSERT_FALSE(failed_id.empty());
  auto retried = run({forq_bin, "dead", "retry", "--redis", redis_.url(), "--id", failed_id});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  ASSERT_TRUE(wait_until(
      [&] {
        return redis_.command({"HGET", "forq:{default}:stats", "dead"}) == "5";
      },
      5s));
  // The second death saw the same bytes: its record keeps them again, exactly.
  auto record = redis_.command({"HGET", "forq:{default}:dead:jobs", failed_id});
  ASSERT_TRUE(parses(record)) << record;
  const auto rec = json::parse(record).as_object();
  ASSERT_TRUE(rec.contains("raw_hex")) << record;
  EXPECT_EQ(rec.at("raw_hex").as_array()[0].as_array()[2].as_string(), "78fffe");
  stop(*forq);
}

// maxmemory with noeviction: an enqueue past it is refused with Redis's reason and exit 1,
// nothing half-written; workers keep their leased jobs pending, say so once, are not ready, and
// finish every accepted job exactly once when Redis has room again.
TEST_F(faults_test, a_full_redis_refuses_enqueues_and_loses_nothing) {
  forq::test::redis_server full({"--maxmemory", "2mb", "--maxmemory-policy", "noeviction"});
  auto record = (dir_ / "ran.txt").string();
  auto handlers = "{\"rec\": {\"exec\": [\"/bin/sh\", \"-c\", \"sleep 1; grep -o "
                  "'\\\"id\\\":\\\"[^\\\"]*\\\"' >> " +
                  record + "\"]}}";
  auto forq = serve(full, {"--workers", "1", "--concurrency", "2", "--handlers", handlers});
  std::vector<std::string> accepted;
  for (int i = 0; i < 10; ++i)
    accepted.push_back(
        enqueue(full.url(), "{\"n\":" + std::to_string(i) + "}", {"--handler", "rec"}));
  // Fill the rest of the memory with a key of someone else's, until Redis refuses.
  const std::string chunk(32768, 'x');
  std::string answer;
  for (int i = 0; i < 200 && !answer.starts_with("OOM"); ++i)
    answer = full.command({"APPEND", "filler", chunk});
  ASSERT_TRUE(answer.starts_with("OOM")) << answer;
  // The workers' acks go on for a moment (XACK and DEL are allowed past maxmemory) and free a
  // little: the limit goes well below what is used, so nothing brings Redis back under it.
  EXPECT_EQ(full.command({"CONFIG", "SET", "maxmemory", "1mb"}), "OK");
  EXPECT_TRUE(enqueue(full.url(), "{\"n\":10}", {"--handler", "rec"}).empty());
  EXPECT_EQ(last_.exit_code, 1);
  EXPECT_NE(last_.err.find("Redis refuses writes: OOM command not allowed"), std::string::npos)
      << last_.err;
  EXPECT_NE(last_.err.find("nothing was added"), std::string::npos);
  auto post = forq::test::http_call(port_, "POST", "/v1/queues/default/jobs",
                                    "{\"handler\":\"rec\",\"payload\":{\"n\":11}}");
  EXPECT_EQ(post.status, 503);
  EXPECT_NE(post.body.find("Redis refuses writes: OOM"), std::string::npos) << post.body;
  // The workers' acks are refused now: said once, and /readyz says why.
  ASSERT_TRUE(forq->wait_for_err("Redis refuses writes", 10s)) << forq->err();
  auto ready = forq::test::http_call(port_, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("refuses writes"), std::string::npos) << ready.body;
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(count(forq->err(), "Redis refuses writes"), 1u) << forq->err();

  EXPECT_EQ(full.command({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  ASSERT_TRUE(wait_until(
      [&] {
        return full.command({"HGET", "forq:{default}:stats", "completed"}) ==
               std::to_string(accepted.size());
      },
      30s))
      << forq->err();
  EXPECT_TRUE(forq->wait_for_err("Redis accepts writes again", 5s)) << forq->err();
  EXPECT_EQ(forq::test::http_call(port_, "GET", "/readyz").status, 200);
  // Every accepted job ran, none twice (at least once allows a rerun only after a stall or a
  // lost connection; neither happened here).
  auto ran = forq::test::read_file(record);
  for (const auto& id : accepted)
    EXPECT_EQ(count(ran, "\"id\":\"" + id + "\""), 1u) << id;
  EXPECT_EQ(count(ran, "\n"), accepted.size());
  stop(*forq);
}

// An evicting Redis: a warning at start, or with --redis-strict exit 2 with the reason.
TEST_F(faults_test, an_evicting_redis_is_named_and_refused_when_strict) {
  forq::test::redis_server lru({"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"});
  auto forq = serve(lru);
  EXPECT_TRUE(forq->wait_for_err("maxmemory-policy is allkeys-lru", 5s)) << forq->err();
  stop(*forq);
  auto strict = serve(lru, {"--redis-strict"}, false);
  auto status = strict->wait_for(15s);
  ASSERT_TRUE(status) << strict->err();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << strict->err();
  EXPECT_NE(strict->err().find("--redis-strict refuses such a Redis"), std::string::npos)
      << strict->err();
}

// A replica refuses writes (-READONLY): an enqueue says so, exit 1.
TEST_F(faults_test, a_replica_refuses_enqueues_with_its_reason) {
  forq::test::redis_server replica({"--replicaof", "127.0.0.1", std::to_string(redis_.port())});
  auto id = enqueue(replica.url(), "{}", {"--handler", "echo"});
  EXPECT_TRUE(id.empty());
  EXPECT_EQ(last_.exit_code, 1);
  EXPECT_NE(last_.err.find("Redis refuses writes: READONLY"), std::string::npos) << last_.err;
}

// Redis down: each API call that needs it answers 503 within the deadline (the Redis timeout,
// 2 s here), and an enqueue that was refused never takes effect when Redis comes back.
TEST_F(faults_test, with_redis_down_the_api_answers_503_in_time_and_nothing_happens_later) {
  auto forq = serve(redis_, {"--redis-timeout", "2"});
  redis_.stop();
  struct call {
    std::string method, path, body;
  };
  for (const auto& c :
       {call{"GET", "/v1/queues", ""},
        call{"POST", "/v1/queues/default/jobs", "{\"handler\":\"echo\",\"payload\":{}}"},
        call{"POST", "/v1/queues/default/jobs",
             "{\"handler\":\"echo\",\"id\":\"late-one\",\"payload\":{}}"},
        call{"GET", "/v1/jobs/some-id", ""}}) {
    auto began = steady::now();
    auto r = forq::test::http_call(port_, c.method, c.path, c.body);
    auto took = ms_since(began);
    EXPECT_EQ(r.status, 503) << c.method << " " << c.path << ": " << r.body;
    EXPECT_TRUE(parses(r.body)) << r.body;
    EXPECT_NE(r.body.find("nothing was done"), std::string::npos) << r.body;
    EXPECT_LT(took, 2600) << c.method << " " << c.path;
    RecordProperty(c.method + "_" + c.path + "_ms", static_cast<int>(took));
  }
  EXPECT_EQ(forq::test::http_call(port_, "GET", "/readyz").status, 503);
  redis_.start();
  ASSERT_TRUE(wait_until(
      [&] { return forq::test::http_call(port_, "GET", "/readyz").status == 200; }, 10s));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "0");
  EXPECT_EQ(redis_.command({"EXISTS", "forq:{default}:unique:late-one"}), "0");
  EXPECT_EQ(redis_.command({"HGET", "forq:{default}:stats", "completed"}), "(nil)");
  stop(*forq);
}

// A wrong password or ACL user: said as such at once, exit 2 (the CLI) or fatal (serve), the
// secret never printed.
TEST_F(faults_test, refused_credentials_are_named_and_not_retried) {
  forq::test::redis_server locked;
  ASSERT_EQ(locked.command({"ACL", "SETUSER", "app", "on", ">app-secret-2", "~*", "&*", "+@all"}),
            "OK");
  ASSERT_EQ(locked.command({"CONFIG", "SET", "requirepass", "right-password-1"}), "OK");
  auto url = [&](const std::string& cred) {
    return "redis://" + cred + "@127.0.0.1:" + std::to_string(locked.port());
  };
  for (const auto& cred : {std::string(":wrong-password-9"), std::string("app:wrong-password-9"),
                           std::string("nobody:wrong-password-9")}) {
    auto began = steady::now();
    auto r = run({forq_bin, "queues", "--redis", url(cred)});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("refused forq's credentials"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("wrong-password-9"), std::string::npos) << r.err;
    EXPECT_LT(ms_since(began), 2000);
  }
  EXPECT_EQ(run({forq_bin, "queues", "--redis", url("app:app-secret-2")}).exit_code, 0);

  std::vector<std::string> argv{
      forq_bin,    "serve", "--redis",    url(":wrong-password-9"), "--listen", "127.0.0.1:0",
      "--workers", "2",     "--data-dir", (dir_ / "data").string()};
  child_process serve_bad(argv);
  auto status = serve_bad.wait_for(15s);
  ASSERT_TRUE(status) << serve_bad.err();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << serve_bad.err();
  EXPECT_NE(serve_bad.err().find("refused forq's credentials"), std::string::npos);
  EXPECT_EQ(serve_bad.err().find("wrong-password-9"), std::string::npos);
}

// --- Access from the network, through a network namespace this test makes: a veth pair with
// addresses of its own (198.18.0.0/24, the range RFC 2544 sets aside for test networks), no traffic
// to any other host's address.
class netns {
 public:
  netns() {
    name_ = "forqt" + std::to_string(::getpid());
    host_if_ = "fq" + std::to_string(::getpid()) + "a";
    // What a killed run of this test may have left behind goes first.
    sh("ip link del " + host_if_ + " 2>/dev/null; ip netns del " + name_ + " 2>/dev/null");
    ok_ = sh("ip netns add " + name_) &&
          sh("ip link add " + host_if_ + " type veth peer name " + peer_if()) &&
          sh("ip link set " + peer_if() + " netns " + name_) &&
          sh("ip addr add 198.18.0.1/24 dev " + host_if_) &&
          sh("ip link set " + host_if_ + " up") &&
          sh("ip netns exec " + name_ + " ip addr add 198.18.0.2/24 dev " + peer_if()) &&
          sh("ip netns exec " + name_ + " ip link set " + peer_if() + " up") &&
          sh("ip netns exec " + name_ + " ip link set lo up");
  }
  ~netns() {
    sh("ip link del " + host_if_ + " 2>/dev/null");
    sh("ip netns del " + name_ + " 2>/dev/null");
  }
  bool ok() const { return ok_; }
  // An HTTP request from inside the namespace to 198.18.0.1:port: "STATUS BODY".
  std::string http(int port, const std::string& method, const std::string& path,
                   const std::string& body = "") const {
    std::string py =
        "import sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request('http://198.18.0.1:" +
        std::to_string(port) + path + "', method='" + method +
        "', data=(sys.argv[1].encode() if sys.argv[1] else None))\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=10); print(r.status, r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code, e.read().decode())\n"
        "except OSError as e:\n"
        "    print(0, e)\n";
    // A veth pair takes a moment to pass traffic after it is up: try again for a few seconds.
    std::string out;
    for (int i = 0; i < 50; ++i) {
      // (Through sh: run() takes a path, and sh finds ip and python3 on PATH.)
      auto r = run(
          {"/bin/sh", "-c", "exec ip netns exec " + name_ + " python3 -c \"$0\" \"$1\"", py, body});
      out = r.out.empty() ? "0 " + r.err : r.out;
      if (!out.starts_with("0 ")) break;
      std::this_thread::sleep_for(100ms);
    }
    return out;
  }

 private:
  std::string peer_if() const { return "fq" + std::to_string(::getpid()) + "b"; }
  static bool sh(const std::string& cmd) { return run({"/bin/sh", "-c", cmd}).exit_code == 0; }
  std::string name_, host_if_;
  bool ok_ = false;
};

TEST_F(faults_test, without_a_token_only_this_machine_may_change_things_unless_opened) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a network namespace";
  netns ns;
  ASSERT_TRUE(ns.ok()) << "cannot make a network namespace with a veth pair here";
  const std::string job = "{\"handler\":\"echo\",\"payload\":{}}";
  {
    auto forq = serve(redis_, {"--listen", "0.0.0.0:0"});
    EXPECT_NE(forq->err().find("reachable from the network without an api_token"),
              std::string::npos)
        << forq->err();
    auto refused = ns.http(port_, "POST", "/v1/queues/default/jobs", job);
    EXPECT_TRUE(refused.starts_with("403 ")) << refused;
    EXPECT_NE(refused.find("--api-open"), std::string::npos) << refused;
    EXPECT_NE(refused.find("api_token"), std::string::npos) << refused;
    EXPECT_TRUE(ns.http(port_, "GET", "/v1/queues").starts_with("200 "));
    EXPECT_TRUE(ns.http(port_, "GET", "/healthz").starts_with("200 "));
    // From this machine it is taken, and only that job was added.
    EXPECT_EQ(forq::test::http_call(port_, "POST", "/v1/queues/default/jobs", job).status, 201);
    EXPECT_TRUE(wait_until(
        [&] {
          return redis_.command({"HGET", "forq:{default}:stats", "completed"}) == "1";
        },
        5s));
    stop(*forq);
  }
  {
    auto forq = serve(redis_, {"--listen", "0.0.0.0:0", "--api-open"});
    EXPECT_NE(forq->err().find("reachable from the network and open (--api-open)"),
              std::string::npos)
        << forq->err();
    auto taken = ns.http(port_, "POST", "/v1/queues/default/jobs", job);
    EXPECT_TRUE(taken.starts_with("201 ")) << taken;
    stop(*forq);
  }
}

} // namespace
