// The exec handler (forq/handlers.hpp) run by a real consumer against a real redis-server:
// results, the retry and fail codes, failures with stderr, timeouts that kill the whole process
// group, a command that does not exist, output over the limit, progress on fd 3, a cancel.
#include "forq/client.hpp"
#include "forq/handlers.hpp"
#include "support/async_test.hpp"
#include "support/one_job.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>

namespace {

namespace asio = boost::asio;
using namespace forq;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::test::sleep_for;

class exec_test : public forq::test::redis_test {
 protected:
  // One job through the exec handler with `o`, until it is done or dead.
  std::optional<job_info> run_one(handlers::exec_options o, std::string payload = "{}",
                                  int max_attempts = 1) {
    return test::run_one_job(
               pool_options(), [&] { return handlers::exec(o); }, payload, max_attempts)
        .info;
  }

  static handlers::exec_options shell(std::string script) {
    handlers::exec_options o;
    o.command = {"/bin/sh", "-c", std::move(script)};
    o.timeout = 10s;
    return o;
  }
};

TEST_F(exec_test, stdout_is_the_result_and_the_job_comes_on_stdin_and_in_the_environment) {
  auto info = run_one(
      shell(
          R"(read job; printf '{"stdin":%s,"id":"%s","attempt":%s,"queue":"%s"}' "$job" "$FORQ_JOB_ID" "$FORQ_ATTEMPT" "$FORQ_QUEUE")"),
      R"({"n":7})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  auto r = boost::json::parse(info->result.value_or("null")).as_object();
  EXPECT_EQ(r.at("stdin").at("payload").at("n"), 7);
  EXPECT_EQ(r.at("stdin").at("id").as_string(), info->id);
  EXPECT_EQ(r.at("id").as_string(), info->id);
  EXPECT_EQ(r.at("attempt"), 1);
  EXPECT_EQ(r.at("queue"), "work");
}

// The command is the configuration's argv, run without a shell: a payload full of shell syntax,
// or naming a command of its own, reaches the command on stdin as data and runs nothing.
TEST_F(exec_test, a_payload_cannot_choose_what_runs) {
  forq::test::temp_dir dir;
  auto marker = (dir.path() / "ran").string();
  handlers::exec_options o;
  o.command = {"/bin/cat"};
  o.timeout = 10s;
  boost::json::object payload;
  payload["cmd"] = "$(touch " + marker + ")";
  payload["line"] = "`touch " + marker + "`; touch " + marker + " && echo pwned";
  payload["exec"] = boost::json::array{"/bin/sh", "-c", "touch " + marker};
  auto info = run_one(o, boost::json::serialize(payload));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  auto r = boost::json::parse(info->result.value_or("null"));
  EXPECT_EQ(r.at("payload"), payload) << "the payload did not arrive as data";
  EXPECT_FALSE(std::filesystem::exists(marker)) << "something in the payload ran";
}

TEST_F(exec_test, the_retry_exit_code_means_try_again) {
  auto info = run_one(
      shell(R"(cat >/dev/null; [ "$FORQ_ATTEMPT" -ge 2 ] || exit 75; echo '"second time"')"), "{}",
      3);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  EXPECT_EQ(info->result.value_or(""), "\"second time\"");
  EXPECT_EQ(info->attempts, 2);
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "retried"}), "1");
}

// Exit fail_exit_code (65, EX_DATAERR): dead at once, whatever attempts are left.
TEST_F(exec_test, the_fail_exit_code_means_dead_at_once) {
  auto info = run_one(shell("cat >/dev/null; echo 'no such user' >&2; exit 65"), "{}", 5);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_EQ(info->attempts, 1);
  EXPECT_NE(info->reason.value_or("").find("exit 65 (fail now, no retry): no such user"),
            std::string::npos)
      << info->reason.value_or("");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "retried"}), "(nil)");
}

// The input carries the attempt's stall count and deadline; each line written to fd 3 is the
// job's progress while it runs (shown by a lookup), and the progress is gone once it ends.
TEST_F(exec_test, progress_lines_on_fd_3_are_the_jobs_progress_while_it_runs) {
  forq::test::temp_dir dir;
  auto go = (dir.path() / "go").string();
  auto o = shell("read job; echo \"$job\" > " + (dir.path() / "input").string() +
                 "; echo 'not json' >&3; echo '{\"done\":0.5}' >&3; "
                 "while [ ! -e " +
                 go + " ]; do sleep 0.02; done; echo '\"ok\"'");
  std::string seen;
  auto midway = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 250 && seen.empty(); ++i) {
      co_await sleep_for(20ms);
      auto v = redis_.command({"HVALS", "forq:{work}:progress"});
      if (v != "[]") seen = v;
    }
    std::ofstream(go).put('\n');
  };
  auto info = test::run_one_job(
                  pool_options(), [&] { return handlers::exec(o); }, "{}", 1, 30s, midway)
                  .info;
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  EXPECT_EQ(seen, R"([{"done":0.5}])") << "the JSON line, not the one that is not JSON";
  EXPECT_EQ(redis_.command({"EXISTS", "forq:{work}:progress"}), "0") << "cleared at the end";
  auto input = boost::json::parse(forq::test::read_file((dir.path() / "input").string()));
  EXPECT_EQ(input.at("stalls"), 0);
  EXPECT_GT(input.at("deadline_ms").as_int64(), queue::epoch_ms());
}

// A cancel (here the queue's attempt timeout) sends SIGTERM to the command's group; one that
// ignores it gets SIGKILL after the grace. The attempt ends as a timeout: retried per policy.
TEST_F(exec_test, a_cancel_sends_sigterm_then_sigkill_after_the_grace) {
  forq::test::temp_dir dir;
  auto marker = (dir.path() / "term").string();
  auto o =
      shell("cat >/dev/null; trap 'echo term > " + marker + "' TERM; while :; do sleep 0.05; done");
  o.cancel_grace = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto info = test::run_one_job(
                  pool_options(), [&] { return handlers::exec(o); }, "{}", 1, 30s, {},
                  [](queue::consumer_options& co) { co.attempt_timeout = 400ms; })
                  .info;
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("timed out after 400 ms"), std::string::npos)
      << info->reason.value_or("");
  EXPECT_EQ(forq::test::read_file(marker), "term\n") << "SIGTERM first";
  EXPECT_GE(took, 700ms) << "SIGKILL only after the grace";
  EXPECT_LT(took, 10s);
}

TEST_F(exec_test, a_failure_is_dead_after_its_attempts_with_the_end_of_stderr) {
  auto info = run_one(shell("cat >/dev/null; echo 'first line' >&2; echo 'disk full' >&2; exit 3"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("exit 3: first line\ndisk full"), std::string::npos)
      << info->reason.value_or("");
}

TEST_F(exec_test, a_timeout_kills_the_whole_process_group) {
  const std::string marker = "31.4159"; // a sleep no other process runs
  auto o = shell("sleep " + marker + " & sleep " + marker + "; wait");
  o.timeout = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto info = run_one(o);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("timed out after 300 ms"), std::string::npos);
  // Neither the shell nor its background child is left.
  std::this_thread::sleep_for(100ms);
  auto left = forq::test::run({"/bin/sh", "-c", "ps -eo args | grep -c '^sleep " + marker + "'"});
  EXPECT_EQ(left.out, "0\n") << "orphans left behind";
}

TEST_F(exec_test, a_command_that_does_not_exist_is_dead_at_once_saying_so) {
  handlers::exec_options o;
  o.command = {"/nonexistent/tool", "--flag"};
  auto info = run_one(o, "{}", 5);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("cannot run /nonexistent/tool: No such file"),
            std::string::npos)
      << info->reason.value_or("");
  EXPECT_EQ(redis_.command({"HGET", "forq:{work}:stats", "retried"}), "(nil)"); // not retried
}

TEST_F(exec_test, output_over_the_limit_is_cut_with_a_note) {
  auto o = shell("cat >/dev/null; head -c 3000000 /dev/zero | tr '\\0' a");
  o.max_output = 1000;
  auto info = run_one(o);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  auto r = boost::json::parse(info->result.value_or("null")).as_object();
  EXPECT_EQ(r.at("output_truncated"), true);
  EXPECT_EQ(r.at("output_bytes"), 3000000);
  EXPECT_EQ(r.at("head").as_string().size(), 1000u);
}

} // namespace
