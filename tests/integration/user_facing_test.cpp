// Issue 17, the items built so far: what a user meets at the API, the command line and the
// probes, with the real binary and a real redis-server. Each assertion failed on the code
// before it.
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <thread>

namespace {

using forq::test::child_process;
using forq::test::http_call;
using forq::test::run;
using namespace std::chrono_literals;
namespace json = boost::json;

const std::string forq_bin = FORQ_BINARY;

class user_facing_test : public forq::test::redis_test {
 protected:
  void SetUp() override {
    forq_ = std::make_unique<child_process>(std::vector<std::string>{
        forq_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0", "--workers", "1",
        "--data-dir", (dir_ / "data").string()});
    ASSERT_TRUE(forq_->wait_for_err("consuming")) << forq_->err();
    port_ = forq::test::listening_port(forq_->err());
  }
  void TearDown() override {
    forq_->signal(SIGTERM);
    EXPECT_TRUE(forq_->wait_for(20s));
  }
  json::object job(const std::string& id) {
    auto r = run({forq_bin, "job", "--redis", redis_.url(), "--json", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out).as_object() : json::object{};
  }
  bool completed(const std::string& id) {
    for (int i = 0; i < 200; ++i) {
      if (job(id).at("state").as_string() == "completed") return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  forq::test::temp_dir dir_;
  std::unique_ptr<child_process> forq_;
  int port_ = 0;
};

// Item 1: a field the API does not know is refused with a suggestion, not ignored; an id that
// is not a string is refused, not replaced by a generated one.
TEST_F(user_facing_test, the_api_refuses_unknown_fields_and_an_id_that_is_not_a_string) {
  auto r =
      http_call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","delayMs":60000})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"(unknown field \"delayMs\"; did you mean \"delay_ms\"?)"),
            std::string::npos)
      << r.body;
  r = http_call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","prio":9})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unknown field"), std::string::npos) << r.body;
  r = http_call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","id":123})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"(\"id\" must be a string)"), std::string::npos) << r.body;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "0"); // nothing was added
  // The payload's numbers arrive as they were sent (2.5, not 2.5E0).
  r = http_call(port_, "POST", "/v1/queues/default/jobs",
                R"({"handler":"echo","payload":{"x":2.5,"n":60}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto id = std::string(json::parse(r.body).as_object().at("id").as_string());
  ASSERT_TRUE(completed(id));
  auto result = redis_.command({"HGET", "forq:{default}:results:data", id});
  EXPECT_NE(result.find(R"("result":{"x":2.5,"n":60})"), std::string::npos) << result;
}

// Item 3: a completed job that returned nothing shows the runs it took (1), not 0.
TEST_F(user_facing_test, a_completed_job_that_returned_nothing_shows_its_attempts) {
  auto r = run({forq_bin, "enqueue", "--redis", redis_.url(), "--handler", "noop", "{}"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto id = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(completed(id));
  EXPECT_EQ(job(id).at("attempts").as_int64(), 1);
  // Item 9: times as people read them in the text form; --json keeps milliseconds.
  auto text = run({forq_bin, "job", "--redis", redis_.url(), id});
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex(R"(finished at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << text.out;
  EXPECT_TRUE(job(id).at("finished_ms").is_int64());
}

// Items 4 and 9: numbers as people write them; probes answer HEAD, and other methods 405.
TEST_F(user_facing_test, numbers_read_as_numbers_and_probes_say_what_they_take) {
  auto cfg = run({forq_bin, "config", "--lease", "2.5", "--drain-timeout", "60"});
  ASSERT_EQ(cfg.exit_code, 0) << cfg.err;
  EXPECT_NE(cfg.out.find(R"("lease":2.5)"), std::string::npos) << cfg.out;
  EXPECT_NE(cfg.out.find(R"("drain_timeout":60)"), std::string::npos) << cfg.out;
  EXPECT_FALSE(std::regex_search(cfg.out, std::regex(R"(\d[eE][+-]?\d)"))) << cfg.out;

  auto head = forq::test::http_send_raw(
      port_, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty()) << head.body;
  auto post = forq::test::http_send_raw(
      port_, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  auto raw = forq::test::http_send_raw(
      port_, "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.status, 405);
}

// Item 9: an empty dead set says so.
TEST_F(user_facing_test, an_empty_dead_list_says_so) {
  auto r = run({forq_bin, "dead", "list", "--redis", redis_.url()});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("no dead jobs in queue default"), std::string::npos) << r.err;
}

// Item 5: the command line's errors are in forq's words (option, value, what is allowed), from
// the same limits the API and the C++ client use; a mistyped option gets a suggestion.
TEST_F(user_facing_test, option_errors_name_the_option_the_value_and_the_limits) {
  struct usage {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<usage> cases{
      {{"limit", "default", "0"},
       "N: 0 is not allowed: use a whole number from 1 to 1000000 jobs per interval, or off"},
      {{"enqueue", "--delay-ms", "-5", "{}"},
       "--delay-ms: -5 is not allowed: use a whole number from 0 to 31536000000 ms (one year)"},
      {{"enqueue", "--delay-ms", "99999999999999999", "{}"},
       "--delay-ms: 99999999999999999 is not allowed"},
      {{"enqueue", "--priority", "x", "{}"},
       "--priority: \"x\" is not allowed: use a whole number from 0 to 9"},
      {{"--workrs", "2", "serve"}, "unknown option --workrs; did you mean --workers?"},
      {{"serve", "--queus", "a"}, "unknown option --queus; did you mean --queues?"},
      {{"dead", "lst"}, "ACTION: \"lst\" is not one of list, retry, purge; did you mean list?"},
      // A global option before the command is no "unknown option" when another one fails.
      {{"--retry", "3", "enqueue", "--priority", "x", "{}"},
       "--priority: \"x\" is not allowed: use a whole number from 0 to 9"},
      {{"bench", "drain", "--rate", "0"},
       "--rate: \"0\" is not allowed: use a number from 1 to 10000000 jobs/s"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{forq_bin};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << r.err;
    EXPECT_NE(r.err.find("forq: " + c.says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not in range"), std::string::npos) << r.err; // CLI11's own words
  }
  // The API refuses the same delay in the same words.
  auto api = http_call(port_, "POST", "/v1/queues/default/jobs",
                       R"({"handler":"echo","delay_ms":99999999999999999})");
  EXPECT_EQ(api.status, 400);
  EXPECT_NE(api.body.find("99999999999999999 is not allowed: use a whole number from 0 to "
                          "31536000000 ms (one year)"),
            std::string::npos)
      << api.body;
  api = http_call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","priority":1.5})");
  EXPECT_EQ(api.status, 400);
  EXPECT_NE(api.body.find("1.5 is not allowed: use a whole number from 0 to 9"), std::string::npos)
      << api.body;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "0");
}

// Item 6: a typo is said, not silently set up: pause/resume/limit refuse a queue this Redis has
// never seen unless --create; enqueue (CLI or API) to a queue no worker has started on adds
// the job and warns.
TEST_F(user_facing_test, a_queue_nobody_knows_is_refused_or_warned_about) {
  auto r = run({forq_bin, "pause", "--redis", redis_.url(), "defualt"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("queue \"defualt\" is not known to this Redis; the queues are: default; "
                       "did you mean \"default\"?; give --create"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(redis_.command({"EXISTS", "forq:{defualt}:meta"}), "0");
  EXPECT_EQ(redis_.command({"SISMEMBER", "forq:queues", "defualt"}), "0");
  r = run({forq_bin, "limit", "--redis", redis_.url(), "defualt", "5"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run({forq_bin, "pause", "--redis", redis_.url(), "--create", "later"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(redis_.command({"HGET", "forq:{later}:meta", "paused"}), "1");
  r = run({forq_bin, "resume", "--redis", redis_.url(), "later"}); // known now
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({forq_bin, "pause", "--redis", redis_.url(), "default"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  run({forq_bin, "resume", "--redis", redis_.url(), "default"});

  r = run({forq_bin, "enqueue", "--redis", redis_.url(), "--queue", "emials", "--handler", "echo",
           "{}"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: no worker has started on queue \"emials\" yet"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the job waits until one does"), std::string::npos) << r.err;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{emials}:stream"}), "1"); // added all the same
  r = run({forq_bin, "enqueue", "--redis", redis_.url(), "--handler", "echo", "{}"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "") << "a queue with workers gets no warning";

  auto api = http_call(port_, "POST", "/v1/queues/emials/jobs", R"({"handler":"echo"})");
  EXPECT_EQ(api.status, 201) << api.body;
  EXPECT_NE(api.body.find("no worker has started on queue \\\"emials\\\" yet"), std::string::npos)
      << api.body;
  api = http_call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo"})");
  EXPECT_EQ(api.status, 201) << api.body;
  EXPECT_EQ(api.body.find("warning"), std::string::npos) << api.body;
}

// Item 9: a field given twice in an API body is refused (the last would silently win).
TEST_F(user_facing_test, a_field_given_twice_is_refused) {
  auto r = http_call(port_, "POST", "/v1/queues/default/jobs",
                     R"({"handler":"echo","priority":1,"priority":9})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"(field \"priority\" is given twice)"), std::string::npos) << r.body;
  EXPECT_EQ(redis_.command({"XLEN", "forq:{default}:stream"}), "0");
}

// Item 9: in the JSON log format the start-up configuration is a field, not an escaped string.
TEST_F(user_facing_test, the_json_log_carries_the_configuration_as_a_field) {
  child_process json_forq({forq_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0",
                           "--workers", "1", "--log-format", "json", "--data-dir",
                           (dir_ / "data2").string()});
  ASSERT_TRUE(json_forq.wait_for_err("consuming")) << json_forq.err();
  json_forq.signal(SIGTERM);
  EXPECT_TRUE(json_forq.wait_for(20s));
  auto first = json_forq.err().substr(0, json_forq.err().find('\n'));
  auto line = json::parse(first).as_object();
  EXPECT_NE(std::string(line.at("msg").as_string()).find("serve starting"), std::string::npos);
  EXPECT_EQ(line.at("config").at("workers"), 1) << first;
  EXPECT_EQ(line.at("config").at("log").at("format"), "json") << first;
}

// Item 8: the retry policy is set per worker (--retry), per queue (--queues Q@POLICY) and per
// job (enqueue --retry, the API's "retry"), each over the one before; a job's attempts and the
// waits between them follow it.
TEST_F(user_facing_test, the_retry_policy_is_set_per_worker_queue_and_job) {
  child_process retrying({forq_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0",
                          "--workers", "1", "--data-dir", (dir_ / "data3").string(), "--retry",
                          "4/fixed/100ms", "--queues", "r1@2/fixed/400ms,r2"});
  ASSERT_TRUE(retrying.wait_for_err("consuming")) << retrying.err();
  auto cfg_port = forq::test::listening_port(retrying.err());
  const std::string always_fails = R"({"times":1000})";
  auto enqueue = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{forq_bin,     "enqueue",   "--redis",
                                  redis_.url(), "--handler", "fail"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(always_fails);
    auto r = run(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  };
  auto queue_policy = enqueue({"--queue", "r1"});  // the queue's: 2, 400 ms apart
  auto worker_policy = enqueue({"--queue", "r2"}); // the worker's: 4, 100 ms apart
  auto job_policy = enqueue({"--queue", "r2", "--retry", "2/fixed/1s"}); // the job's own
  auto api = http_call(cfg_port, "POST", "/v1/queues/r2/jobs",
                       R"({"handler":"fail","payload":{"times":1000},"retry":"1"})");
  ASSERT_EQ(api.status, 201) << api.body;
  auto api_policy = std::string(json::parse(api.body).as_object().at("id").as_string());
  auto bad =
      http_call(cfg_port, "POST", "/v1/queues/r2/jobs", R"({"handler":"fail","retry":"2/fixd"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find(R"(\"fixd\" is not a part of a retry policy)"), std::string::npos)
      << bad.body;

  auto dead_after = [&](const std::string& queue, const std::string& id, int attempts,
                        std::chrono::milliseconds at_least,
                        std::chrono::milliseconds at_most = 2500ms) {
    json::object info;
    for (int i = 0; i < 300; ++i) {
      auto r = run({forq_bin, "job", "--redis", redis_.url(), "--queue", queue, "--json", id});
      info = r.exit_code == 0 ? json::parse(r.out).as_object() : json::object{};
      if (info.contains("state") && info.at("state") == "dead") break;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(info.at("state"), "dead") << id << " " << json::serialize(info);
    EXPECT_EQ(info.at("attempts"), attempts) << id << " " << json::serialize(info);
    EXPECT_NE(std::string(info.at("reason").as_string())
                  .find("failed " + std::to_string(attempts) + " time"),
              std::string::npos)
        << json::serialize(info);
    // Every attempt's error is kept, oldest first, the last one also as last_error.
    const auto& errors = info.at("errors").as_array();
    EXPECT_EQ(errors.size(), static_cast<std::size_t>(attempts)) << json::serialize(info);
    for (std::size_t i = 0; i < errors.size(); ++i) {
      EXPECT_EQ(errors[i].at("attempt"), static_cast<std::int64_t>(i + 1)) << json::serialize(info);
      if (i > 0) {
        EXPECT_GE(errors[i].at("at_ms").as_int64(), errors[i - 1].at("at_ms").as_int64());
      }
    }
    if (!errors.empty()) {
      EXPECT_EQ(errors.back().at("error"), info.at("last_error")) << json::serialize(info);
    }
    // Time from the first attempt to the last: the policy's waits (fixed: no jitter).
    auto ms = std::stoll(id.substr(0, id.find('-')));
    EXPECT_GE(info.at("finished_ms").as_int64() - ms, at_least.count()) << json::serialize(info);
    // forq's own policy (3 attempts, 0.5-1 s then 1-2 s) would take longer or stop sooner.
    EXPECT_LE(info.at("finished_ms").as_int64() - ms, at_most.count()) << json::serialize(info);
  };
  dead_after("r1", queue_policy, 2, 400ms);
  dead_after("r2", worker_policy, 4, 300ms);
  dead_after("r2", job_policy, 2, 1000ms, 3000ms);
  dead_after("r2", api_policy, 1, 0ms);
  retrying.signal(SIGTERM);
  EXPECT_TRUE(retrying.wait_for(20s));
}

// Item 2: one shape for a job: `forq dead list --json`, the API's dead list, `forq job --json`
// and GET /v1/jobs/{id} print the same object for the same dead job, with numbers as numbers
// and the payload as JSON.
TEST_F(user_facing_test, a_dead_job_has_one_shape_everywhere) {
  auto r = run({forq_bin, "enqueue", "--redis", redis_.url(), "--handler", "fail", "--attempts",
                "1", "--priority", "3", "--retry", "fixed/10ms", R"({"times":5,"ms":"x"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto id = r.out.substr(0, r.out.find('\n'));
  json::object from_job;
  for (int i = 0; i < 200; ++i) {
    from_job = job(id);
    if (from_job.contains("state") && from_job.at("state") == "dead") break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(from_job.at("state"), "dead") << json::serialize(from_job);
  EXPECT_EQ(from_job.at("attempts"), 1);
  EXPECT_EQ(from_job.at("priority"), 3);
  EXPECT_EQ(from_job.at("max_attempts"), 1);
  EXPECT_EQ(from_job.at("retry"), "fixed/10ms");
  EXPECT_EQ(from_job.at("payload").at("ms"), "x"); // JSON, not a string of JSON
  EXPECT_TRUE(from_job.at("finished_ms").is_int64());

  auto listed = run({forq_bin, "dead", "list", "--json", "--redis", redis_.url()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto cli = json::parse(listed.out).as_array();
  ASSERT_EQ(cli.size(), 1u) << listed.out;
  EXPECT_EQ(cli[0].as_object(), from_job);
  auto api = http_call(port_, "GET", "/v1/queues/default/dead");
  ASSERT_EQ(api.status, 200);
  EXPECT_EQ(json::parse(api.body).as_array().at(0).as_object(), from_job) << api.body;
  auto one = http_call(port_, "GET", "/v1/jobs/" + id);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body).as_object(), from_job) << one.body;
  // The text list: id, when it died (as people read a time), why.
  auto text = run({forq_bin, "dead", "list", "--redis", redis_.url()});
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex(id + R"(\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tfailed 1 time)")))
      << text.out;
}

} // namespace
