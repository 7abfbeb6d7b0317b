// examples/wordcount, a program on forq's C++ API (forq/forq.hpp), run as its users run it:
// its own serve against a real redis-server, jobs for its C++ handlers enqueued by its own
// command line and over its HTTP API, results read back with its `job` command.
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <sys/wait.h>
#include <thread>

namespace {

using forq::test::child_process;
using forq::test::run;
using forq::test::run_result;
using namespace std::chrono_literals;

const std::string wordcount_bin = FORQ_WORDCOUNT_BINARY;

class example_test : public forq::test::redis_test {
 protected:
  run_result wordcount(std::vector<std::string> args) {
    args.insert(args.begin(), wordcount_bin);
    args.push_back("--redis");
    args.push_back(redis_.url());
    return run(args);
  }

  // The job's `forq job --json` object once it has finished (completed or dead), or null.
  boost::json::value finished(const std::string& id) {
    for (int i = 0; i < 1500; ++i) {
      auto r = wordcount({"job", id, "--json"});
      if (r.exit_code == 0) {
        auto v = boost::json::parse(r.out);
        auto state = v.at("state").as_string();
        if (state == "completed" || state == "dead") return v;
      }
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  forq::test::temp_dir dir_;
};

TEST_F(example_test, the_wordcount_program_runs_its_cpp_handlers_end_to_end) {
  child_process p({wordcount_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0",
                   "--workers", "2", "--queues", "default,words=count_words", "--data-dir",
                   (dir_ / "data").string()});
  ASSERT_TRUE(p.wait_for_err("master ready")) << p.err();
  int port = forq::test::listening_port(p.err());

  auto counted =
      wordcount({"enqueue", "--handler", "count_words", R"({"text":"the quick brown\nfox"})"});
  ASSERT_EQ(counted.exit_code, 0) << counted.err;
  auto squared = wordcount({"enqueue", "--handler", "square_later", R"({"n":12,"ms":50})"});
  ASSERT_EQ(squared.exit_code, 0) << squared.err;
  auto refused = wordcount({"enqueue", "--handler", "count_words", R"({"words":3})"});
  ASSERT_EQ(refused.exit_code, 0) << refused.err;
  // Over HTTP to the queue whose default handler is count_words: no handler named.
  auto posted = forq::test::http_call(port, "POST", "/v1/queues/words/jobs",
                                      R"({"payload":{"text":"one two"}})");
  ASSERT_EQ(posted.status, 201) << posted.body;
  // And the API knows the program's handlers.
  auto unknown = forq::test::http_call(port, "POST", "/v1/queues/default/jobs",
                                       R"({"handler":"count_letters"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("count_words"), std::string::npos) << unknown.body;

  auto c = finished(first_line(counted.out));
  ASSERT_TRUE(c.is_object()) << p.err();
  EXPECT_EQ(c.at("state"), "completed");
  EXPECT_EQ(c.at("result").at("words"), 4);
  EXPECT_EQ(c.at("result").at("lines"), 2);
  auto s = finished(first_line(squared.out));
  ASSERT_TRUE(s.is_object()) << p.err();
  EXPECT_EQ(s.at("result").at("square"), 144);
  auto r = finished(first_line(refused.out));
  ASSERT_TRUE(r.is_object()) << p.err();
  EXPECT_EQ(r.at("state"), "dead"); // failure(): dead at once, no retries
  EXPECT_EQ(r.at("attempts"), 1);
  EXPECT_NE(boost::json::serialize(r).find("count_words needs a payload"), std::string::npos) << r;
  // The schedule the program declares is in Redis, as the setting's.
  auto listed = wordcount({"schedule", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto schedules = boost::json::parse(listed.out).as_array();
  ASSERT_EQ(schedules.size(), 1u) << listed.out;
  EXPECT_EQ(schedules[0].at("name"), "morning-count");
  EXPECT_EQ(schedules[0].at("cron"), "0 6 * * *");
  EXPECT_EQ(schedules[0].at("source"), "config");

  auto h = boost::json::parse(posted.body).at("id").as_string();
  auto w = wordcount({"job", std::string(h), "--queue", "words", "--json"});
  for (int i = 0; i < 1500 && w.out.find("completed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
    w = wordcount({"job", std::string(h), "--queue", "words", "--json"});
  }
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(boost::json::parse(w.out).at("result").at("words"), 2) << w.out;

  p.signal(SIGTERM);
  auto status = p.wait_for(20s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p.err();
}

TEST_F(example_test, a_program_schedule_may_not_reuse_a_configured_name) {
  auto r = run(
      {wordcount_bin, "config", "--schedules", R"([{"name":"morning-count","every_ms":60000}])"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("schedule \"morning-count\" already"), std::string::npos) << r.err;
}

TEST_F(example_test, a_program_handler_may_not_reuse_a_configured_name) {
  auto r = run({wordcount_bin, "config", "--handlers", R"({"count_words":{"exec":["true"]}})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("handler \"count_words\" is both the program's and configured"),
            std::string::npos)
      << r.err;
}

} // namespace
