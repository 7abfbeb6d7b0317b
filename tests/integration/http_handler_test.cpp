// The http handler (forq/handlers.hpp) delivering jobs to a real local app (tests/foreign/app.py,
// Python's http.server) through a real consumer and redis-server: 200 with a body, 500 then 200,
// 429 with Retry-After, 404 to dead, connection refused, and a job that takes three leases.
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

#include <regex>
#include <thread>

namespace {

namespace asio = boost::asio;
using namespace forq;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::test::sleep_for;

class http_handler_test : public forq::test::redis_test {
 protected:
  void SetUp() override {
    app_ = std::make_unique<forq::test::child_process>(std::vector<std::string>{
        "/usr/bin/python3", std::string(FORQ_SOURCE_DIR) + "/tests/foreign/app.py"});
    for (int i = 0; i < 500 && app_->out().find('\n') == std::string::npos; ++i)
      std::this_thread::sleep_for(10ms);
    auto line = app_->out();
    ASSERT_EQ(line.rfind("PORT ", 0), 0u) << line << app_->err();
    port_ = std::stoi(line.substr(5));
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // One job delivered to `target` until done or dead; its job info, and how long it took.
  // With a lease under a second (a long job), XPENDING is read two leases in.
  std::optional<job_info> run_one(std::string target, int max_attempts = 1,
                                  std::chrono::milliseconds lease = 30s,
                                  std::chrono::milliseconds* took = nullptr) {
    handlers::http_options ho;
    ho.url = target;
    ho.timeout = 5s;
    if (max_output_) ho.max_output = max_output_;
    std::function<asio::awaitable<void>()> midway;
    if (lease < 1s)
      midway = [this, lease]() -> asio::awaitable<void> {
        co_await sleep_for(lease * 2);
        pending_midway_ =
            redis_.command({"XPENDING", "forq:{work}:stream", "workers", "-", "+", "10"});
      };
    auto run = test::run_one_job(
        pool_options(), [&] { return handlers::http(ho); }, R"({"n":1})", max_attempts, lease,
        midway);
    if (took) *took = run.took;
    return run.info;
  }

  // How often the app was called for a job.
  std::size_t calls_for(const std::string& id) {
    auto r = forq::test::run({"/usr/bin/python3", "-c",
                              "import json,urllib.request;print(len(json.load(urllib.request."
                              "urlopen('" +
                                  url("/calls") + "')).get('" + id + "',[])))"});
    return r.out.empty() ? 0 : std::stoul(r.out);
  }

  std::unique_ptr<forq::test::child_process> app_;
  int port_ = 0;
  std::size_t max_output_ = 0; // 0: the default
  std::string pending_midway_; // XPENDING's extended form, two leases into a long job
};

TEST_F(http_handler_test, a_2xx_body_is_the_result_and_the_job_is_posted_with_its_headers) {
  auto info = run_one(url("/ok"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  auto r = boost::json::parse(info->result.value_or("null")).as_object();
  EXPECT_EQ(r.at("id").as_string(), info->id);
  EXPECT_EQ(r.at("attempt"), 1);
  EXPECT_EQ(r.at("queue"), "work");
  EXPECT_EQ(r.at("body").at("payload").at("n"), 1);
}

// A cancel (here the queue's attempt timeout, shorter than the handler's own) abandons the
// request at once: the attempt ends as the cancel says, long before the app replies.
TEST_F(http_handler_test, a_cancel_abandons_the_request) {
  handlers::http_options ho;
  ho.url = url("/slow?ms=4000");
  ho.timeout = 30s;
  auto run = test::run_one_job(
      pool_options(), [&] { return handlers::http(ho); }, "{}", 1, 30s, {},
      [](queue::consumer_options& co) { co.attempt_timeout = 300ms; });
  ASSERT_TRUE(run.info);
  EXPECT_EQ(run.info->state, "dead");
  EXPECT_NE(run.info->reason.value_or("").find("timed out after 300 ms (the queue's timeout)"),
            std::string::npos)
      << run.info->reason.value_or("");
  EXPECT_LT(run.took, 3s);
}

TEST_F(http_handler_test, a_5xx_is_retried_and_then_succeeds) {
  auto info = run_one(url("/flaky"), 3);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  EXPECT_EQ(info->result.value_or(""), "\"fine\"");
  EXPECT_EQ(info->attempts, 2);
}

TEST_F(http_handler_test, a_429_waits_for_its_retry_after) {
  std::chrono::milliseconds took{};
  auto info = run_one(url("/busy"), 3, 30s, &took);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  EXPECT_GE(took, 950ms) << "Retry-After: 1 was not honoured (the policy's backoff is 10 ms)";
}

TEST_F(http_handler_test, a_4xx_is_dead_with_the_status_and_the_body) {
  auto info = run_one(url("/missing"), 5);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("http: 404 Not Found: no such thing"), std::string::npos)
      << info->reason.value_or("");
  EXPECT_EQ(calls_for(info->id), 1u) << "a 404 must not be retried";
}

TEST_F(http_handler_test, a_body_over_max_output_keeps_its_head_as_exec_does) {
  max_output_ = 1000;
  auto info = run_one(url("/big?bytes=300000"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "completed");
  auto r = boost::json::parse(info->result.value_or("null")).as_object();
  EXPECT_EQ(r.at("output_truncated"), true);
  EXPECT_EQ(r.at("output_bytes"), 300000);
  EXPECT_EQ(r.at("kept_bytes"), 1000);
  EXPECT_EQ(r.at("head").as_string(), "\"" + std::string(999, 'a'));
  // A body within the limit is the result as it came, on the same kept-alive connection.
  max_output_ = 1000;
  info = run_one(url("/big?bytes=1000"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->result.value_or(""), "\"" + std::string(998, 'a') + "\"");
}

TEST_F(http_handler_test, a_redirect_is_not_followed_and_the_job_is_dead_at_once) {
  auto info = run_one(url("/moved"), 5);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("http: 302 Found: see elsewhere"), std::string::npos)
      << info->reason.value_or("");
  EXPECT_EQ(calls_for(info->id), 1u) << "a 302 is the app's answer, not a fault to retry";
}

TEST_F(http_handler_test, an_app_that_is_not_there_is_retried_then_dead_saying_why) {
  auto info = run_one("http://127.0.0.1:" + std::to_string(forq::test::free_port()) + "/x", 2);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "dead");
  EXPECT_NE(info->reason.value_or("").find("cannot deliver to"), std::string::npos)
      << info->reason.value_or("");
  EXPECT_NE(info->reason.value_or("").find("refused"), std::string::npos);
}

TEST_F(http_handler_test, a_job_three_leases_long_stays_leased_and_runs_once) {
  auto info = run_one(url("/slow?ms=900"), 1, 300ms);
  ASSERT_TRUE(info);
  // Two leases in, Redis saw the lease renewed: idle for less than one lease, delivered once.
  // [[id, consumer, idle ms, deliveries]]
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(pending_midway_, m, std::regex(R"(\[\[[^,]+, [^,]+, (\d+), (\d+)\]\])")))
      << pending_midway_;
  EXPECT_LT(std::stoi(m[1]), 300) << pending_midway_;
  EXPECT_EQ(m[2], "1");
  EXPECT_EQ(info->state, "completed");
  EXPECT_EQ(info->attempts, 1);
  EXPECT_EQ(calls_for(info->id), 1u) << "the lease lapsed and the job ran twice";
}

} // namespace
