// The queue as an operator and a foreign producer meet it: `forq serve` consuming the default
// queue, the ops commands (enqueue, queues, job, dead, pause, resume) against a real
// redis-server, and a Python producer written from docs/protocol.md alone (python3-redis).
#include "forq/queue/producer.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <sstream>
#include <sys/wait.h>
#include <thread>

namespace {

namespace fs = std::filesystem;
using forq::test::child_process;
using forq::test::run;
using forq::test::run_result;
using namespace std::chrono_literals;

const std::string forq_bin = FORQ_BINARY;
const std::string source_dir = FORQ_SOURCE_DIR;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

class queue_cli_test : public forq::test::redis_test {
 protected:
  run_result forq(std::vector<std::string> args) {
    args.insert(args.begin(), forq_bin);
    args.push_back("--redis");
    args.push_back(redis_.url());
    return run(args);
  }

  // `forq enqueue ...` with `input` on stdin (NDJSON).
  run_result forq_stdin(const std::string& input, const std::string& args) {
    forq::test::write_file(dir_ / "in.ndjson", input);
    return run({"/bin/sh", "-c",
                forq_bin + " enqueue --redis " + redis_.url() + " " + args + " < " +
                    (dir_ / "in.ndjson").string()});
  }

  std::unique_ptr<child_process> serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{
        forq_bin,   "serve",       "--redis",    redis_.url(),
        "--listen", "127.0.0.1:0", "--data-dir", (dir_ / "data").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<child_process>(argv);
    EXPECT_TRUE(p->wait_for_err("consuming")) << p->err();
    return p;
  }

  std::string completed(const std::string& queue = "default") {
    auto v = redis_.command({"HGET", "forq:{" + queue + "}:stats", "completed"});
    return v == "(nil)" ? "0" : v;
  }

  bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 15s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  static void stop(child_process& p) {
    p.signal(SIGTERM);
    auto status = p.wait_for(20s);
    ASSERT_TRUE(status) << "forq serve did not stop";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p.err();
  }

  forq::test::temp_dir dir_;
};

TEST_F(queue_cli_test, serve_runs_what_enqueue_adds_and_job_reports_it) {
  auto one = forq({"enqueue", "--handler", "echo", R"({"hello":"world"})"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto id = lines_of(one.out).at(0);
  auto shown = forq({"job", id, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(boost::json::parse(shown.out).at("state"), "ready");

  auto p = serve();
  ASSERT_TRUE(wait_until([&] { return completed() == "1"; })) << p->err();
  shown = forq({"job", id, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto info = boost::json::parse(shown.out).as_object();
  EXPECT_EQ(info.at("state"), "completed");
  EXPECT_EQ(info.at("result").at("hello"), "world");
  EXPECT_EQ(info.at("queue"), "default");
  stop(*p);
}

TEST_F(queue_cli_test, bulk_enqueue_from_stdin_names_the_refused_lines_and_adds_the_rest) {
  auto r =
      forq_stdin("{\"n\":1}\n{\"n\":2}\nnot json\n\n{\"n\":4}\n", "--handler noop --queue bulk");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines_of(r.out).size(), 3u) << r.out;
  EXPECT_NE(r.err.find("line 3 refused: payload is not JSON"), std::string::npos) << r.err;
  auto q = forq({"queues", "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto all = boost::json::parse(q.out).as_array();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("queue"), "bulk");
  EXPECT_EQ(all[0].at("ready"), 3);
}

TEST_F(queue_cli_test, a_caller_id_is_enqueued_once) {
  auto first = forq({"enqueue", "--handler", "noop", "--id", "order-7", "{}"});
  auto second = forq({"enqueue", "--handler", "noop", "--id", "order-7", "{}"});
  EXPECT_EQ(first.exit_code, 0);
  EXPECT_EQ(first.out, "order-7\n");
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_EQ(second.out, "order-7\tduplicate\n");
  EXPECT_NE(second.err.find("nothing was added"), std::string::npos);
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "1");
}

// redis.durability = replicated:1 on a Redis with no replica: WAIT answers 0, so enqueue (one
// job, a bulk of them, and through the HTTP API) says "not confirmed" and fails, while the jobs
// are on the primary and run; the acks' shortfall is one warning, not one per batch.
TEST_F(queue_cli_test, writes_no_replica_confirmed_are_reported_not_confirmed) {
  const std::string durable = "--redis-durability=replicated:1:50";
  auto one = forq({"enqueue", durable, "--handler", "noop", "{}"});
  EXPECT_EQ(one.exit_code, 1) << one.err;
  EXPECT_NE(one.err.find("not confirmed: job "), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("0 of the 1 replica(s)"), std::string::npos) << one.err;
  auto bulk = forq_stdin("{}\n{}\n", "--handler noop " + durable);
  EXPECT_EQ(bulk.exit_code, 1) << bulk.err;
  EXPECT_EQ(lines_of(bulk.out).size(), 2u) << bulk.out; // their ids: they were added
  EXPECT_NE(bulk.err.find("line 2 not confirmed"), std::string::npos) << bulk.err;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "3");
  auto bad = forq({"enqueue", "--redis-durability", "replicated:0", "{}"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("expected async or replicated:N"), std::string::npos) << bad.err;

  auto p = serve({durable});
  int port = forq::test::listening_port(p->err());
  auto r = forq::test::http_call(port, "POST", "/v1/queues/default/jobs", R"({"handler":"noop"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("not confirmed: job "), std::string::npos) << r.body;
  ASSERT_TRUE(wait_until([&] { return completed() == "4"; })) << p->err();
  ASSERT_TRUE(p->wait_for_err("replica(s) redis.durability asks for", 5s)) << p->err();
  stop(*p);
  // Said once by each worker that acked jobs (it says so again only after a confirmed batch),
  // not once per batch: count the warnings per worker.
  auto said = p->err();
  std::map<std::string, int> warnings; // by "[worker N"
  for (auto at = said.find("jobs are on the primary"); at != std::string::npos;
       at = said.find("jobs are on the primary", at + 1)) {
    auto line_start = said.rfind('\n', at);
    auto line = said.substr(line_start == std::string::npos ? 0 : line_start + 1,
                            at - (line_start == std::string::npos ? 0 : line_start + 1));
    auto tag = line.find("[worker ");
    ASSERT_NE(tag, std::string::npos) << line;
    ++warnings[line.substr(tag, line.find(' ', tag + 8) - tag)];
  }
  EXPECT_FALSE(warnings.empty()) << said;
  for (const auto& [worker, n] : warnings)
    EXPECT_EQ(n, 1) << worker << " warned " << n << " times:\n" << said;
}

TEST_F(queue_cli_test, bad_options_and_an_unreachable_redis_are_clear_errors) {
  struct bad {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  for (const auto& b : std::vector<bad>{
           {{"enqueue", "--handler", "x", "--priority", "10", "{}"}, 2, "--priority"},
           {{"enqueue", "--handler", "x", "--attempts", "0", "{}"}, 2, "--attempts"},
           {{"enqueue", "--handler", "bad name!", "{}"}, 2, "handler \"bad name!\""},
           {{"enqueue", "--handler", "x", "{oops"}, 2, "payload is not JSON"},
           {{"enqueue", "--handler", "x", "--queue", "a{b}", "{}"}, 2, "queue name"},
           {{"dead", "bury"}, 2, "ACTION"},
           {{"job", "no-such-job"}, 1, "no job no-such-job"},
       }) {
    auto r = forq(b.args);
    EXPECT_EQ(r.exit_code, b.code) << b.args[0] << " " << r.err;
    EXPECT_NE(r.err.find(b.says), std::string::npos) << r.err;
  }
  auto port = forq::test::free_port();
  auto r = run({forq_bin, "queues", "--redis", "redis://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach Redis"), std::string::npos) << r.err;
  auto none = run({forq_bin, "queues", "--data-dir", (dir_ / "nothing-here").string()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no Redis to talk to"), std::string::npos) << none.err;
}

TEST_F(queue_cli_test, dead_jobs_are_listed_retried_and_purged_from_the_command_line) {
  auto p = serve();
  auto r = forq({"enqueue", "--handler", "not-a-handler", "{}"});
  ASSERT_EQ(r.exit_code, 0);
  auto id = lines_of(r.out).at(0);
  ASSERT_TRUE(wait_until([&] { return redis_.command({"ZCARD", "forq:{default}:dead"}) == "1"; }));
  auto listed = forq({"dead", "list"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.out.find(id), std::string::npos);
  EXPECT_NE(listed.out.find("unknown handler \"not-a-handler\""), std::string::npos) << listed.out;

  auto retried = forq({"dead", "retry", "--id", id});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(retried.out, "retried 1 dead job of queue default\n");
  ASSERT_TRUE(wait_until([&] {
    return redis_.command({"HGET", "forq:{default}:stats", "dead"}) == "2"; // died again
  }));
  auto purged = forq({"dead", "purge"});
  EXPECT_EQ(purged.exit_code, 0);
  EXPECT_EQ(purged.out, "purged 1 dead job of queue default\n");
  auto unknown = forq({"dead", "purge", "--id", "1-1"});
  EXPECT_EQ(unknown.exit_code, 1);
  stop(*p);
}

TEST_F(queue_cli_test, a_paused_queue_waits_for_resume) {
  auto p = serve();
  EXPECT_EQ(forq({"pause", "default"}).exit_code, 0);
  std::this_thread::sleep_for(300ms); // the consumer's look at the flag (250 ms)
  auto r = forq({"enqueue", "--handler", "noop", "{}"});
  ASSERT_EQ(r.exit_code, 0);
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(completed(), "0");
  auto q = forq({"queues", "--json"});
  EXPECT_EQ(boost::json::parse(q.out).as_array().at(0).at("paused"), true);
  EXPECT_EQ(forq({"resume", "default"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return completed() == "1"; }));
  stop(*p);
}

// Issue 4: a producer in another language, written only from docs/protocol.md.
TEST_F(queue_cli_test, a_python_producer_s_jobs_run_and_their_results_read_back) {
  const std::string py = source_dir + "/tests/foreign/producer.py";
  auto enq = run({"/usr/bin/python3", py, redis_.url(), "default", "enqueue", "50"});
  ASSERT_EQ(enq.exit_code, 0) << enq.err;
  auto ids = lines_of(enq.out);
  ASSERT_EQ(ids.size(), 50u);
  auto unique = run({"/usr/bin/python3", py, redis_.url(), "default", "enqueue-unique", "py-1",
                     source_dir + "/src/lua/enqueue_unique.lua"});
  ASSERT_EQ(unique.exit_code, 0) << unique.err;
  EXPECT_EQ(unique.out, "enqueued py-1\n");
  auto again = run({"/usr/bin/python3", py, redis_.url(), "default", "enqueue-unique", "py-1",
                    source_dir + "/src/lua/enqueue_unique.lua"});
  EXPECT_EQ(again.out, "duplicate py-1\n");
  auto bad = run({"/usr/bin/python3", py, redis_.url(), "default", "enqueue-bad"});
  ASSERT_EQ(bad.exit_code, 0) << bad.err;
  auto bad_id = lines_of(bad.out).at(0);

  auto p = serve();
  ASSERT_TRUE(wait_until([&] { return completed() == "51"; })) << p->err();
  ASSERT_TRUE(wait_until([&] { return redis_.command({"ZCARD", "forq:{default}:dead"}) == "1"; }));

  std::vector<std::string> args{"/usr/bin/python3", py, redis_.url(), "default", "results"};
  args.insert(args.end(), ids.begin(), ids.end());
  args.push_back("py-1");
  auto results = run(args);
  ASSERT_EQ(results.exit_code, 0) << results.err;
  auto got = lines_of(results.out);
  ASSERT_EQ(got.size(), 51u);
  for (std::size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(got[i], ids[i] + " {\"n\": " + std::to_string(i) + "}");
  EXPECT_EQ(got[50], "py-1 {\"id\": \"py-1\"}");

  auto dead = run({"/usr/bin/python3", py, redis_.url(), "default", "dead", bad_id});
  EXPECT_NE(dead.out.find("malformed job: payload is not JSON"), std::string::npos) << dead.out;
  stop(*p);
}

} // namespace

namespace {

// Issue 6: a configured exec handler under forq serve, end to end from the command line.
TEST_F(queue_cli_test, an_exec_handler_configured_by_flag_runs_jobs_and_fail_retries) {
  auto p = serve(
      {"--handlers", R"({"upper": {"exec": ["/bin/sh", "-c", "tr a-z A-Z"], "timeout": 5}})"});
  auto r = forq({"enqueue", "--handler", "upper", R"({"word":"hi"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto id = lines_of(r.out).at(0);
  auto f = forq({"enqueue", "--handler", "fail", "--attempts", "3", R"({"times":2})"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  ASSERT_TRUE(wait_until([&] { return completed() == "2"; }, 30s)) << p->err();
  auto shown = forq({"job", id, "--json"});
  auto info = boost::json::parse(shown.out).as_object();
  EXPECT_EQ(info.at("state"), "completed");
  EXPECT_EQ(info.at("result").at("PAYLOAD").at("WORD"), "HI") << shown.out;
  auto failed = boost::json::parse(forq({"job", lines_of(f.out).at(0), "--json"}).out).as_object();
  EXPECT_EQ(failed.at("attempts"), 3);
  // A bad handler table is refused before anything starts.
  auto bad = run({forq_bin, "serve", "--handlers", R"({"x": {"exec": "not a list"}})"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("exec must be a non-empty array of strings"), std::string::npos)
      << bad.err;
  stop(*p);
}

} // namespace

namespace {

TEST_F(queue_cli_test, a_queue_s_default_handler_runs_the_jobs_that_name_none) {
  // Refused before anything starts: a default handler nobody provides.
  auto bad = run({forq_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0",
                  "--data-dir", (dir_ / "data").string(), "--queues", "work=nosuch"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("queue \"work\": default handler \"nosuch\" is not a handler"),
            std::string::npos)
      << bad.err;

  auto p = serve({"--queues", "work=echo,plain"});
  auto mine = forq({"enqueue", "--queue", "work", R"({"from":"cli"})"}); // no --handler
  ASSERT_EQ(mine.exit_code, 0) << mine.err;
  auto foreign = redis_.command(
      {"XADD", "forq:{work}:stream", "*", "payload", R"({"from":"xadd"})"}); // no handler field
  auto orphan = forq({"enqueue", "--queue", "plain", "{}"});                 // plain has no default
  ASSERT_EQ(orphan.exit_code, 0) << orphan.err;
  ASSERT_TRUE(wait_until([&] {
    return completed("work") == "2" && redis_.command({"ZCARD", "forq:{plain}:dead"}) == "1";
  })) << p->err();
  for (const auto& [id, from] : {std::pair{lines_of(mine.out).at(0), "cli"}, {foreign, "xadd"}}) {
    auto shown = forq({"job", id, "--queue", "work", "--json"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    EXPECT_EQ(boost::json::parse(shown.out).at("result").at("from"), from) << shown.out;
  }
  auto dead = forq({"job", lines_of(orphan.out).at(0), "--queue", "plain"});
  EXPECT_NE(dead.out.find("names no handler and queue \"plain\" has no default handler"),
            std::string::npos)
      << dead.out;
  stop(*p);
}

} // namespace

namespace {

// What a foreign producer or a handler put in a job is printed escaped: a dead job's id and
// reason holding terminal escapes and line breaks come out as one line of visible escapes.
TEST_F(queue_cli_test, job_text_is_printed_escaped_never_as_terminal_escapes) {
  const std::string id = "evil\x1b[2J\nforged";
  redis_.command({"ZADD", "forq:{default}:dead", "1700000000000", id});
  redis_.command({"HSET", "forq:{default}:dead:jobs", id,
                  "{\"id\":\"evil\\u001b[2J\\nforged\",\"handler\":\"h\\u009b\",\"reason\":"
                  "\"boom\\u001b]0;title\\u0007\\r\"}"});
  auto listed = forq({"dead", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out.find('\x1b'), std::string::npos) << listed.out;
  EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), 1) << listed.out;
  EXPECT_NE(listed.out.find(R"(evil\x1b[2J\nforged)"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(R"(boom\x1b]0;title\x07\r)"), std::string::npos) << listed.out;
  auto shown = forq({"job", id, "--queue", "default"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out.find('\x1b'), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(R"(handler:     h\u009b)"), std::string::npos) << shown.out;
  auto missing = forq({"job", "no\x1b[31mred"});
  EXPECT_EQ(missing.err.find('\x1b'), std::string::npos) << missing.err;
}

// Job control from the command line (docs/job-control.md): a running command is cancelled from
// another process (no pub/sub, no shared memory: the mark in Redis), its process group ends, a
// waiting `forq enqueue --wait` hears it, and each exit code says what happened.
TEST_F(queue_cli_test, a_running_command_is_cancelled_and_its_waiter_told) {
  const auto pids = (dir_ / "pids").string();
  auto p = serve({"--handlers", R"({"hang": {"exec": ["/bin/sh", "-c", "sleep 60 & echo $$ $! > )" +
                                    pids + R"(; wait"], "timeout": 120}})"});
  // The job waits for its end in a process of its own, as a web request would.
  child_process waiter({forq_bin, "enqueue", "--redis", redis_.url(), "--handler", "hang", "--id",
                        "job-1", "--wait", "20", "{}"});
  ASSERT_TRUE(wait_until([&] {
    return std::filesystem::exists(pids) &&
           forq::test::read_file(pids).find(' ') != std::string::npos;
  })) << p->err();
  pid_t shell = 0, sleeper = 0;
  {
    std::istringstream in(forq::test::read_file(pids));
    in >> shell >> sleeper;
  }
  ASSERT_GT(sleeper, 0);
  const auto asked = std::chrono::steady_clock::now();
  auto c = forq({"cancel", "job-1", "--reason", "the user left"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("told to stop"), std::string::npos) << c.out;
  auto status = waiter.wait_for(10s);
  ASSERT_TRUE(status);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << waiter.err();
  EXPECT_NE(waiter.err().find("was cancelled by cli: the user left"), std::string::npos)
      << waiter.err();
  // The whole group is gone (SIGTERM: sh and its sleep both end).
  EXPECT_TRUE(forq::test::wait_process_gone(sleeper, 6s));
  EXPECT_TRUE(forq::test::wait_process_gone(shell, 6s));
  auto shown = forq({"job", "job-1", "--json"});
  auto info = boost::json::parse(shown.out).as_object();
  EXPECT_EQ(info.at("state"), "cancelled") << shown.out;
  EXPECT_EQ(info.at("cancelled_by"), "cli");
  EXPECT_EQ(info.at("attempts"), 1) << "never retried";
  auto again = forq({"cancel", "job-1"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("has already ended (cancelled); nothing changed"), std::string::npos)
      << again.err;
  // A waiting job never starts: cancelled at once.
  auto later = forq({"enqueue", "--handler", "hang", "--delay-ms", "60000", "--id", "later", "{}"});
  ASSERT_EQ(later.exit_code, 0) << later.err;
  auto cl = forq({"cancel", "later", "--queue", "default", "--json"});
  EXPECT_EQ(cl.exit_code, 0) << cl.err;
  EXPECT_EQ(boost::json::parse(cl.out).at("outcome"), "cancelled") << cl.out;
  // --wait on a job that completes: its result on stdout, exit 0; one still running: 124.
  auto echo = forq({"enqueue", "--handler", "echo", "--wait", "10", R"({"w":1})"});
  EXPECT_EQ(echo.exit_code, 0) << echo.err;
  EXPECT_EQ(boost::json::parse(echo.out).at("w"), 1) << echo.out;
  auto slow =
      forq({"enqueue", "--handler", "sleep", "--id", "slow", "--wait", "0.3", R"({"ms":3000})"});
  EXPECT_EQ(slow.exit_code, 124) << slow.err;
  EXPECT_NE(slow.err.find("after 0.3 s of waiting"), std::string::npos) << slow.err;
  auto job_wait = forq({"job", "slow", "--wait", "10", "--json"});
  EXPECT_EQ(job_wait.exit_code, 0) << job_wait.err;
  EXPECT_EQ(boost::json::parse(job_wait.out).at("state"), "completed") << job_wait.out;
  auto q = forq({"queues"});
  EXPECT_NE(q.out.find("CANCELLED"), std::string::npos) << q.out;
  auto qj = boost::json::parse(forq({"queues", "--json"}).out).as_array();
  EXPECT_EQ(qj.at(0).at("cancelled"), 2) << qj;
  stop(*p);
}

} // namespace
