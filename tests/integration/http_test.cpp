// The HTTP surface of forq serve (docs/http.md) with the real binary, two workers and a real
// redis-server: every endpoint, and malformed, oversized and slow requests.
#include "bench/bench.hpp"
#include "forq/queue/producer.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <regex>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using forq::test::child_process;
using namespace std::chrono_literals;

const std::string forq_bin = FORQ_BINARY;

using forq::test::http_call;
using forq::test::http_connect;
using forq::test::http_send_raw;

auto call(int port, const std::string& method, const std::string& path,
          const std::string& body = "") {
  return http_call(port, method, path, body);
}

class http_test : public forq::test::redis_test {
 protected:
  void SetUp() override {
    std::vector<std::string> argv{
        forq_bin,      "serve",     "--redis", redis_.url(), "--listen",
        "127.0.0.1:0", "--workers", "2",       "--data-dir", (dir_ / "data").string()};
    forq_ = std::make_unique<child_process>(argv);
    ASSERT_TRUE(forq_->wait_for_err("master ready")) << forq_->err();
    port_ = forq::test::listening_port(forq_->err());
    ASSERT_GT(port_, 0) << forq_->err();
    // Both workers accept: wait until they are consuming.
    ASSERT_TRUE(forq_->wait_for_err("consuming"));
  }
  void TearDown() override {
    forq_->signal(SIGTERM);
    auto status = forq_->wait_for(20s);
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << forq_->err();
  }

  forq::test::temp_dir dir_;
  std::unique_ptr<child_process> forq_;
  int port_ = 0;
};

TEST_F(http_test, health_readiness_and_metrics) {
  EXPECT_EQ(call(port_, "GET", "/healthz").status, 200);
  // Ready once that worker's Redis connection is up (the workers connect as they start).
  int ready = 0;
  for (int i = 0; i < 250 && ready != 200; ++i) {
    ready = call(port_, "GET", "/readyz").status;
    if (ready != 200) {
      EXPECT_EQ(ready, 503);
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_EQ(ready, 200);
  auto m = call(port_, "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE forq_jobs_total counter"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("forq_workers 2"), std::string::npos) << m.body;
  for (const char* family :
       {"forq_job_pickup_seconds", "forq_job_run_seconds", "forq_redis_round_trip_seconds"})
    EXPECT_NE(m.body.find(std::string("# TYPE ") + family + " histogram"), std::string::npos)
        << family;
}

TEST_F(http_test, the_json_api_enqueues_reports_and_repairs) {
  auto r =
      call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","payload":{"x":1}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto id = std::string(boost::json::parse(r.body).at("id").as_string());
  auto dup = call(port_, "POST", "/v1/queues/default/jobs",
                  R"({"handler":"echo","id":"once","payload":{}})");
  EXPECT_EQ(dup.status, 201);
  dup = call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo","id":"once"})");
  EXPECT_EQ(dup.status, 200);
  EXPECT_EQ(boost::json::parse(dup.body).at("duplicate"), true);

  // Every worker gives the same totals: the metrics are the process tree's.
  bool done = false;
  for (int i = 0; i < 200 && !done; ++i) {
    auto job = call(port_, "GET", "/v1/jobs/" + id);
    done = job.status == 200 && boost::json::parse(job.body).at("state") == "completed";
    if (!done) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(done);
  auto job = boost::json::parse(call(port_, "GET", "/v1/jobs/" + id).body);
  EXPECT_EQ(job.at("result").at("x"), 1);
  EXPECT_EQ(call(port_, "GET", "/v1/jobs/1-1").status, 404);
  // In one queue only: found there, not in a queue that lacks it.
  auto in_default = call(port_, "GET", "/v1/jobs/" + id + "?queue=default");
  EXPECT_EQ(in_default.status, 200) << in_default.body;
  EXPECT_EQ(boost::json::parse(in_default.body).at("result").at("x"), 1);
  EXPECT_EQ(call(port_, "GET", "/v1/jobs/" + id + "?queue=other").status, 404);

  auto queues = boost::json::parse(call(port_, "GET", "/v1/queues").body).as_array();
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0].at("queue"), "default");

  // A dead job: listed, retried, purged.
  redis_.command({"ZADD", "forq:{default}:dead", "1", "d-1"});
  redis_.command({"HSET", "forq:{default}:dead:jobs", "d-1",
                  R"({"id":"d-1","handler":"nothing-here","payload":"{}","reason":"x"})"});
  auto dead = boost::json::parse(call(port_, "GET", "/v1/queues/default/dead").body).as_array();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].at("id"), "d-1");
  auto purged = call(port_, "DELETE", "/v1/queues/default/dead", R"({"ids":["d-1"]})");
  EXPECT_EQ(purged.status, 200);
  EXPECT_EQ(boost::json::parse(purged.body).at("purged"), 1);
  EXPECT_EQ(call(port_, "POST", "/v1/queues/default/dead/retry").status, 200);
}

// Figures by the minute: each worker adds what it did every 10 s, and the last of it as it
// stops; the API reads them summed over the workers.
TEST_F(http_test, the_queues_figures_by_the_minute_count_every_job_once) {
  auto done_in = [](const boost::json::value& q) {
    std::int64_t n = 0;
    for (const auto& m : q.at("minutes").as_array())
      n += m.at("done").to_number<std::int64_t>();
    return n;
  };
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo"})").status, 201);
  std::int64_t seen = 0;
  boost::json::value q;
  for (int i = 0; i < 150 && seen < 30; ++i) { // the workers add every 10 s
    auto r = call(port_, "GET", "/v1/queues/default?minutes=5");
    ASSERT_EQ(r.status, 200) << r.body;
    q = boost::json::parse(r.body);
    ASSERT_EQ(q.at("minutes").as_array().size(), 5u) << r.body;
    seen = done_in(q);
    if (seen < 30) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(seen, 30) << boost::json::serialize(q);
  const auto& last = q.at("minutes").as_array().back();
  // The jobs ran in the last minute or two: one of them has the pick-up percentiles.
  bool latency = false;
  for (const auto& m : q.at("minutes").as_array())
    latency = latency ||
              (m.at("started").to_number<std::int64_t>() > 0 && m.at("pickup_p99_ms").is_double());
  EXPECT_TRUE(latency) << boost::json::serialize(q);
  EXPECT_GT(last.at("at_ms").to_number<std::int64_t>(), 0);
  auto all = boost::json::parse(call(port_, "GET", "/v1/queues?minutes=60").body).as_array();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("minutes").as_array().size(), 60u);
  EXPECT_EQ(done_in(all[0]), 30);
  EXPECT_FALSE(boost::json::parse(call(port_, "GET", "/v1/queues/default").body)
                   .as_object()
                   .contains("minutes"));
  auto bad = call(port_, "GET", "/v1/queues/default?minutes=61");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("from 0 to 60"), std::string::npos) << bad.body;
  // Five more, and a stop at once: the workers add the last of it as they stop.
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(call(port_, "POST", "/v1/queues/default/jobs", R"({"handler":"echo"})").status, 201);
  for (int i = 0; i < 200; ++i) {
    if (redis_.command({"HGET", "forq:{default}:stats", "completed"}) == "35") break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(redis_.command({"HGET", "forq:{default}:stats", "completed"}), "35");
  forq_->signal(SIGTERM);
  ASSERT_TRUE(forq_->wait_for(20s));
  const auto fields = redis_.command({"HGETALL", "forq:{default}:minutes"});
  std::int64_t done = 0; // "[field, value, field, value, ...]"
  std::vector<std::string> words;
  for (std::size_t at = 1; at < fields.size();) {
    auto end = fields.find_first_of(",]", at);
    if (end == std::string::npos) break;
    words.push_back(fields.substr(at, end - at));
    at = end + 2;
  }
  for (std::size_t i = 0; i + 1 < words.size(); i += 2)
    if (words[i].ends_with(":d")) done += std::stoll(words[i + 1]);
  EXPECT_EQ(done, 35) << fields;
  SetUp(); // a forq for TearDown to stop
}

// The Workers page's source: each worker process says which jobs it runs and since when.
TEST_F(http_test, each_worker_says_which_jobs_it_runs_and_since_when) {
  const auto before = forq::queue::epoch_ms();
  auto added = call(port_, "POST", "/v1/queues/default/jobs",
                    R"({"handler":"sleep","payload":{"ms":11500}})");
  ASSERT_EQ(added.status, 201) << added.body;
  const std::string id(boost::json::parse(added.body).at("id").as_string());
  // Seen at a worker's next beat (every 10 s).
  boost::json::object found;
  std::string body;
  for (int i = 0; i < 120 && found.empty(); ++i) {
    auto r = call(port_, "GET", "/v1/workers");
    ASSERT_EQ(r.status, 200) << r.body;
    body = r.body;
    const auto workers = boost::json::parse(r.body);
    for (const auto& w : workers.as_array())
      for (const auto& q : w.at("queues").as_array())
        for (const auto& j : q.at("jobs").as_array())
          if (j.at("id").as_string() == id) found = j.as_object();
    if (found.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(found.empty()) << body;
  const auto started = found.at("started_ms").to_number<std::int64_t>();
  EXPECT_GE(started, before);
  EXPECT_LE(started, forq::queue::epoch_ms());
}

// An http handler's app reports a running job's progress through the API: seen by the job's
// lookup and the Active list while it runs, refused for a job that is not running, and not
// shown once the attempt ends. (Each worker takes one report per job per 100 ms; with two workers
// behind one port, which one answers is the kernel's choice, so that is not asserted here.)
TEST_F(http_test, a_running_job_s_progress_is_reported_through_the_api_and_shown) {
  auto added = call(port_, "POST", "/v1/queues/default/jobs",
                    R"({"handler":"sleep","payload":{"ms":1500}})");
  ASSERT_EQ(added.status, 201) << added.body;
  const std::string id(boost::json::parse(added.body).at("id").as_string());
  const auto path = "/v1/queues/default/jobs/" + id + "/progress";
  forq::test::http_response r;
  for (int i = 0; i < 100; ++i) { // until a worker has it
    r = call(port_, "POST", path, R"({"pct":40})");
    if (r.status != 409) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(r.status, 204) << r.body;
  auto job = call(port_, "GET", "/v1/jobs/" + id + "?queue=default");
  ASSERT_EQ(job.status, 200);
  EXPECT_EQ(boost::json::serialize(boost::json::parse(job.body).at("progress")), R"({"pct":40})");
  auto active = call(port_, "GET", "/v1/queues/default/jobs?state=active");
  ASSERT_EQ(active.status, 200);
  EXPECT_NE(active.body.find(R"("progress":{"pct":40})"), std::string::npos) << active.body;
  EXPECT_EQ(call(port_, "POST", path, "not json").status, 400);
  EXPECT_EQ(call(port_, "POST", "/v1/queues/default/jobs/no-such-job/progress", "1").status, 404);
  // Once it has finished: refused, and nothing of its progress is left.
  for (int i = 0; i < 200; ++i) {
    auto j = call(port_, "GET", "/v1/jobs/" + id + "?queue=default");
    if (boost::json::parse(j.body).at("state") == "completed") break;
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(150ms); // past the 100 ms between reports
  auto late = call(port_, "POST", path, R"({"pct":100})");
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_NE(late.body.find("is not running (completed)"), std::string::npos) << late.body;
  auto done = boost::json::parse(call(port_, "GET", "/v1/jobs/" + id + "?queue=default").body);
  EXPECT_FALSE(done.as_object().contains("progress")) << "a finished job shows no progress";
}

// Job control through the API (docs/job-control.md): a synchronous enqueue, a cancel of a
// running, a delayed and an ended job, a wait that wakes when a cancel ends the job.
TEST_F(http_test, jobs_are_cancelled_and_waited_for_through_the_api) {
  auto sync = call(port_, "POST", "/v1/queues/default/jobs?wait=10",
                   R"({"handler":"echo","payload":{"n":7}})");
  ASSERT_EQ(sync.status, 201) << sync.body;
  auto done = boost::json::parse(sync.body).as_object();
  EXPECT_EQ(done.at("state"), "completed") << sync.body;
  EXPECT_EQ(done.at("result").at("n"), 7) << sync.body;

  auto added = call(port_, "POST", "/v1/queues/default/jobs",
                    R"({"handler":"sleep","payload":{"ms":30000},"id":"long"})");
  ASSERT_EQ(added.status, 201) << added.body;
  for (int i = 0; i < 200; ++i) { // until a worker runs it
    auto j = call(port_, "GET", "/v1/jobs/long?queue=default");
    if (boost::json::parse(j.body).at("state") == "active") break;
    std::this_thread::sleep_for(20ms);
  }
  const auto asked = std::chrono::steady_clock::now();
  auto c = call(port_, "POST", "/v1/queues/default/jobs/long/cancel", R"({"reason":"no longer"})");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(boost::json::parse(c.body).at("outcome"), "requested") << c.body;
  auto waited = call(port_, "GET", "/v1/jobs/long?queue=default&wait=10");
  ASSERT_EQ(waited.status, 200) << waited.body;
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  auto ended = boost::json::parse(waited.body).as_object();
  EXPECT_EQ(ended.at("state"), "cancelled") << waited.body;
  EXPECT_EQ(ended.at("cancelled_by"), "api");
  EXPECT_EQ(ended.at("cancel_reason"), "no longer");
  // The metrics count it (published by the worker within a second).
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = call(port_, "GET", "/metrics").body;
    if (metrics.find(R"(forq_jobs_total{queue="default",outcome="cancelled"} 1)") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(metrics.find(R"(forq_jobs_total{queue="default",outcome="cancelled"} 1)"),
            std::string::npos)
      << metrics;
  auto late = call(port_, "POST", "/v1/queues/default/jobs/long/cancel");
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_EQ(boost::json::parse(late.body).at("outcome"), "terminal");

  auto delayed = call(port_, "POST", "/v1/queues/default/jobs",
                      R"({"handler":"echo","delay_ms":60000,"id":"later"})");
  ASSERT_EQ(delayed.status, 201);
  auto cd = call(port_, "POST", "/v1/queues/default/jobs/later/cancel");
  EXPECT_EQ(boost::json::parse(cd.body).at("outcome"), "cancelled") << cd.body;
  auto list = call(port_, "GET", "/v1/queues/default/jobs?state=cancelled");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(boost::json::parse(list.body).as_array().size(), 2u) << list.body;
  auto stats = boost::json::parse(call(port_, "GET", "/v1/queues/default").body);
  EXPECT_EQ(stats.at("cancelled"), 2);
  // A wait that runs out: the job as it stands.
  auto slow = call(port_, "POST", "/v1/queues/default/jobs?wait=0.2",
                   R"({"handler":"sleep","payload":{"ms":2000}})");
  ASSERT_EQ(slow.status, 201) << slow.body;
  EXPECT_NE(boost::json::parse(slow.body).at("state"), "completed");

  EXPECT_EQ(call(port_, "GET", "/v1/jobs/long?queue=default&wait=abc").status, 400);
  EXPECT_EQ(call(port_, "GET", "/v1/jobs/long?queue=default&wait=301").status, 400);
  EXPECT_EQ(call(port_, "POST", "/v1/queues/default/jobs/nobody/cancel").status, 404);
  EXPECT_EQ(call(port_, "POST", "/v1/queues/default/jobs/long/cancel", "[1]").status, 400);
}

// A queue's events (docs/job-control.md, "Events"): off until turned on; then one job's events
// come in order through `forq events --follow`, and the SSE endpoint goes on after the id a
// reconnecting client sends as Last-Event-ID.
TEST_F(http_test, a_queue_s_events_are_followed_in_order_and_resumed_over_sse) {
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {forq_bin, "events", "default"});
    args.insert(args.end(), {"--redis", redis_.url()});
    return std::make_unique<child_process>(args);
  };
  // Off: a job of the queue leaves no events.
  auto quiet = call(port_, "POST", "/v1/queues/default/jobs?wait=10", R"({"handler":"echo"})");
  ASSERT_EQ(quiet.status, 201) << quiet.body;
  ASSERT_EQ(boost::json::parse(quiet.body).at("state"), "completed") << quiet.body;
  auto none = cli({"--json"});
  ASSERT_EQ(none->wait_for(10s), 0) << none->err();
  EXPECT_EQ(none->out(), "");
  EXPECT_NE(none->err().find("events are off"), std::string::npos) << none->err();

  auto on = cli({"--on", "--max", "1000"});
  ASSERT_EQ(on->wait_for(10s), 0) << on->err();
  auto follow = cli({"--follow", "--json", "--last", "0"});
  std::this_thread::sleep_for(1500ms); // producers and workers look again within a second
  auto added = call(port_, "POST", "/v1/queues/default/jobs",
                    R"({"handler":"sleep","payload":{"ms":1000},"id":"ev-1"})");
  ASSERT_EQ(added.status, 201) << added.body;
  forq::test::http_response p;
  for (int i = 0; i < 100; ++i) { // until a worker has it
    p = call(port_, "POST", "/v1/queues/default/jobs/ev-1/progress", R"({"pct":50})");
    if (p.status != 409 && p.status != 429) break;
    std::this_thread::sleep_for(110ms); // a worker takes one report per job per 100 ms
  }
  ASSERT_EQ(p.status, 204) << p.body;
  auto done = call(port_, "GET", "/v1/jobs/ev-1?queue=default&wait=10");
  ASSERT_EQ(boost::json::parse(done.body).at("state"), "completed") << done.body;

  // The follower's lines about ev-1: added, active, progress, completed, in that order.
  std::vector<boost::json::object> seen;
  for (int i = 0; i < 300; ++i) {
    seen.clear();
    std::istringstream lines(follow->out());
    for (std::string line; std::getline(lines, line);) {
      auto e = boost::json::parse(line).as_object();
      if (e.at("id") == "ev-1") seen.push_back(e);
    }
    if (!seen.empty() && seen.back().at("event") == "completed") break;
    std::this_thread::sleep_for(20ms);
  }
  follow->signal(SIGTERM);
  follow->wait_for(5s);
  std::vector<std::string> kinds;
  for (const auto& e : seen)
    kinds.emplace_back(e.at("event").as_string());
  ASSERT_EQ(kinds, (std::vector<std::string>{"added", "active", "progress", "completed"}))
      << follow->out();
  EXPECT_EQ(seen[1].at("attempt"), 1);
  EXPECT_EQ(boost::json::serialize(seen[2].at("progress")), R"({"pct":50})");
  EXPECT_FALSE(seen[3].contains("result")) << "the built-in sleep returns no result";

  // SSE, resumed after "active": the next message is the progress, then the completion.
  const std::string after(seen[1].at("event_id").as_string());
  int fd = http_connect(port_);
  ASSERT_GE(fd, 0);
  const std::string req = "GET /v1/queues/default/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Last-Event-ID: " +
                          after + "\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (got.find("\"completed\"") == std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  auto first = got.find("id: ");
  ASSERT_NE(first, std::string::npos) << got;
  EXPECT_EQ(got.substr(first, 4 + seen[2].at("event_id").as_string().size()),
            "id: " + std::string(seen[2].at("event_id").as_string()))
      << got;
  EXPECT_NE(got.find("\"event\":\"completed\",\"id\":\"ev-1\""), std::string::npos) << got;
  EXPECT_EQ(got.find("\"event\":\"added\""), std::string::npos) << "nothing before the id: " << got;
  EXPECT_EQ(call(port_, "GET", "/v1/queues/default/events?after=x1").status, 400);
  EXPECT_EQ(call(port_, "GET", "/v1/queues/default/events?last=1001").status, 400);
  EXPECT_EQ(call(port_, "GET", "/v1/queues/no-such-queue/events").status, 404);

  auto off = cli({"--off"});
  ASSERT_EQ(off->wait_for(10s), 0) << off->err();
  auto gone = cli({"--json"});
  ASSERT_EQ(gone->wait_for(10s), 0) << gone->err();
  EXPECT_EQ(gone->out(), "") << "turned off, the events kept are deleted";
}

// The schedule endpoints: the same operations as `forq schedule`, the same JSON shape.
TEST_F(http_test, schedules_are_added_listed_paused_run_and_removed) {
  const std::string at = "/v1/queues/reports/schedules/nightly";
  auto added = call(port_, "PUT", at, R"({"cron":"0 3 * * *","tz":"Europe/London",
      "handler":"noop","payload":{"kind":"nightly"},"overlap":"skip"})");
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(boost::json::parse(added.body).at("result"), "added");
  auto same = call(port_, "PUT", at, R"({"cron":"0 3 * * *","tz":"Europe/London",
      "handler":"noop","payload":{"kind":"nightly"},"overlap":"skip"})");
  EXPECT_EQ(same.status, 200);
  EXPECT_EQ(boost::json::parse(same.body).at("result"), "unchanged");
  auto listed = call(port_, "GET", "/v1/queues/reports/schedules");
  ASSERT_EQ(listed.status, 200);
  auto all = boost::json::parse(listed.body).as_array();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("name"), "nightly");
  EXPECT_EQ(all[0].at("overlap"), "skip");
  EXPECT_EQ(all[0].at("state"), "active");
  EXPECT_EQ(all[0].at("version"), 1);

  EXPECT_EQ(call(port_, "POST", at + "/pause").status, 200);
  all = boost::json::parse(call(port_, "GET", "/v1/queues/reports/schedules").body).as_array();
  EXPECT_EQ(all[0].at("state"), "paused");
  auto ran = call(port_, "POST", at + "/run");
  ASSERT_EQ(ran.status, 201) << ran.body;
  auto id = std::string(boost::json::parse(ran.body).at("id").as_string());
  EXPECT_EQ(id.rfind("schedule:nightly:now:", 0), 0u) << id;
  auto job = call(port_, "GET", "/v1/jobs/" + id);
  EXPECT_EQ(job.status, 200) << job.body;
  EXPECT_EQ(call(port_, "POST", at + "/resume").status, 200);

  // /metrics shows the schedules of the queues this forq consumes (here: default).
  ASSERT_EQ(call(port_, "PUT", "/v1/queues/default/schedules/beat",
                 R"({"every_ms":3600000,"handler":"noop"})")
                .status,
            201);
  auto m = call(port_, "GET", "/metrics").body;
  EXPECT_NE(m.find(R"(forq_schedule_runs_total{queue="default",schedule="beat"} 0)"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find(R"(forq_schedule_skipped_total{queue="default",schedule="beat",reason="overlap"} 0)"),
      std::string::npos);
  EXPECT_NE(m.find(R"(forq_schedule_overdue_seconds{queue="default",schedule="beat"} 0.000)"),
            std::string::npos);
  EXPECT_EQ(m.find(R"(schedule="nightly")"), std::string::npos) << "not a queue of this forq";

  // Refusals: the field and value named; a schedule that is not there.
  auto bad = call(port_, "PUT", at, R"({"cron":"0 25 * * *"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("hour 25"), std::string::npos) << bad.body;
  bad = call(port_, "PUT", at, R"({"every_ms":1000,"overlap":"sometimes"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("sometimes"), std::string::npos) << bad.body;
  bad = call(port_, "PUT", at, R"({"name":"other","every_ms":1000})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(call(port_, "POST", at + "/explode").status, 404);
  EXPECT_EQ(call(port_, "DELETE", at).status, 200);
  EXPECT_EQ(call(port_, "DELETE", at).status, 404);
  EXPECT_EQ(call(port_, "POST", at + "/run").status, 404);
  EXPECT_TRUE(boost::json::parse(call(port_, "GET", "/v1/queues/reports/schedules").body)
                  .as_array()
                  .empty());
}

TEST_F(http_test, bad_requests_get_clear_errors_and_hurt_no_one_else) {
  struct bad {
    std::string method, path, body;
    int status;
    std::string says;
  };
  for (const auto& b : std::vector<bad>{
           {"POST", "/v1/queues/default/jobs", "not json", 400, "JSON object"},
           {"POST", "/v1/queues/default/jobs", R"({"payload":{}})", 400, "handler"},
           {"POST", "/v1/queues/default/jobs", R"({"handler":"nope"})", 400, "unknown handler"},
           {"POST", "/v1/queues/default/jobs", R"({"handler":"echo","priority":12})", 400,
            "priority"},
           {"POST", "/v1/queues/bad{name}/jobs", R"({"handler":"echo"})", 400, "queue name"},
           {"GET", "/nowhere", "", 404, "no such path"},
           {"PUT", "/v1/queues", "", 404, "no such endpoint"},
           // A queue this Redis never saw is most likely a typo: said, and nothing set up.
           {"GET", "/v1/queues/defualt", "", 404, "no queue defualt on this Redis"},
           {"POST", "/v1/queues/defualt/pause", "", 404, "add ?create=true"},
           {"POST", "/v1/queues/defualt/resume", "", 404, "add ?create=true"},
           {"PUT", "/v1/queues/defualt/rate_limit", R"({"max":5,"per_ms":1000})", 404,
            "add ?create=true"},
       }) {
    auto r = call(port_, b.method, b.path, b.body);
    EXPECT_EQ(r.status, b.status) << b.method << " " << b.path << ": " << r.body;
    EXPECT_NE(r.body.find(b.says), std::string::npos) << r.body;
  }
  auto listed = call(port_, "GET", "/v1/queues");
  EXPECT_EQ(listed.body.find("defualt"), std::string::npos) << listed.body;
  auto created = call(port_, "POST", "/v1/queues/later/pause?create=true");
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(call(port_, "GET", "/v1/queues/later").status, 200);
  EXPECT_EQ(call(port_, "GET", "/v1/queues/default").status, 200);
  // Over the 1 MiB limit.
  auto big = call(port_, "POST", "/v1/queues/default/jobs", std::string(2u << 20, 'a'));
  EXPECT_EQ(big.status, 413);
  // Not HTTP at all.
  auto garbage = http_send_raw(port_, "\x01\x02 hello there\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  // A client that connects and says nothing holds only its own connection.
  int idle = http_connect(port_);
  ASSERT_GE(idle, 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(call(port_, "GET", "/healthz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  ::close(idle);
}

} // namespace

namespace {

class http_token_test : public forq::test::redis_test {};

// With api_token set, requests that change something need it; reads and probes do not; the
// token never shows in `forq config`, in the log, or in a refusal.
TEST_F(http_token_test, mutating_requests_need_the_bearer_token) {
  const std::string token = "s3cret-token-0123456789";
  forq::test::temp_dir dir;
  child_process p({forq_bin, "serve", "--redis", redis_.url(), "--listen", "127.0.0.1:0",
                   "--workers", "1", "--data-dir", (dir / "data").string()},
                  {"FORQ_API_TOKEN=" + token});
  ASSERT_TRUE(p.wait_for_err("consuming")) << p.err();
  int port = forq::test::listening_port(p.err());
  auto post = [&](const std::string& auth) {
    std::string body = R"({"handler":"echo","payload":{}})";
    return forq::test::http_send_raw(
        port, "POST /v1/queues/default/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                  (auth.empty() ? std::string() : "Authorization: " + auth + "\r\n") +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  EXPECT_EQ(post("").status, 401);
  EXPECT_EQ(post("Bearer wrong").status, 401);
  EXPECT_EQ(post("Bearer " + token + "x").status, 401);
  EXPECT_EQ(post("Basic " + token).status, 401);
  EXPECT_EQ(post("Bearer " + token).status, 201);
  EXPECT_EQ(call(port, "DELETE", "/v1/queues/default/dead").status, 401);
  EXPECT_EQ(call(port, "GET", "/v1/queues").status, 200);
  EXPECT_EQ(call(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(call(port, "GET", "/metrics").status, 200);
  p.signal(SIGTERM);
  ASSERT_TRUE(p.wait_for(20s));
  EXPECT_EQ(p.err().find(token), std::string::npos) << "the token was logged";

  auto shown = forq::test::run({forq_bin, "config"}, {"FORQ_API_TOKEN=" + token});
  EXPECT_EQ(shown.exit_code, 0);
  EXPECT_EQ(shown.out.find(token), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("\"api_token\":\"***\""), std::string::npos) << shown.out;
  auto bad = forq::test::run({forq_bin, "config", "--api-token", "short secret"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err.find("short secret"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("16 to 1024 printable ASCII"), std::string::npos) << bad.err;
}

} // namespace

namespace {

// More clients than the worker has file descriptors for: accept fails with EMFILE while the
// clients stay. The worker must wait and try again, not spin on accept on its only thread,
// and it serves again as soon as they go.
TEST(http_fd_test, out_of_file_descriptors_a_worker_waits_instead_of_spinning) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check opens a pipe to test that a vtable is readable; in a process with no
  // free descriptor that fails, and it reports a valid object as "invalid vptr" and exits
  // (reproduced with a ten-line program). The Release tier runs this test.
  GTEST_SKIP() << "the sanitizer runtime needs free file descriptors of its own";
#endif
  forq::test::redis_server redis;
  forq::test::temp_dir dir;
  child_process forq({"/bin/sh", "-c",
                      "ulimit -n 64 && exec " + forq_bin + " serve --redis " + redis.url() +
                          " --listen 127.0.0.1:0 --workers 1 --data-dir " +
                          (dir.path() / "data").string()});
  ASSERT_TRUE(forq.wait_for_err("consuming")) << forq.err();
  int port = forq::test::listening_port(forq.err());
  std::smatch m;
  auto log = forq.err();
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(worker 1 started \(pid (\d+)\))"))) << log;
  pid_t worker = std::stoi(m[1]);

  std::vector<int> clients;
  for (int i = 0; i < 100; ++i)
    if (int fd = forq::test::http_connect(port); fd >= 0) clients.push_back(fd);
  ASSERT_TRUE(forq.wait_for_err("cannot accept a connection")) << forq.err();
  auto before = forq::bench::read_proc(worker);
  std::this_thread::sleep_for(1s);
  auto after = forq::bench::read_proc(worker);
  ASSERT_TRUE(before && after) << "worker " << worker << " is gone\n" << forq.err();
  auto used = after->cpu_s - before->cpu_s;
  EXPECT_LT(used, 0.2) << "the worker used " << used << " s of CPU in 1 s: spinning";

  for (int fd : clients)
    ::close(fd);
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = call(port, "GET", "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200) << forq.err();
  forq.signal(SIGTERM);
  EXPECT_TRUE(forq.wait_for(20s));
}

} // namespace
