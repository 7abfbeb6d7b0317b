// What an HTTP request asks for (src/http/routes.hpp), decided without a socket or a Redis.
#include "http/routes.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <tuple>

namespace {

using forq::http::answer;
using forq::http::api_call;
using forq::http::request_view;
using forq::http::route;
using op = api_call::op;

forq::config test_config() {
  forq::config c;
  c.queues = {{"emails", 1, "mailer", {}}, {"default", 1, "", {}}};
  return c;
}
const std::vector<std::string> handlers{"noop", "echo", "mailer"};

request_view req(std::string method, std::string target, std::string body = {}) {
  request_view r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  r.peer = boost::asio::ip::make_address("127.0.0.1");
  return r;
}

answer answered(const forq::http::routed& r) {
  if (auto* a = std::get_if<answer>(&r)) return *a;
  ADD_FAILURE() << "an API call, not an answer";
  return {};
}

api_call called(const forq::http::routed& r) {
  if (auto* c = std::get_if<api_call>(&r)) return *c;
  ADD_FAILURE() << "an answer, not an API call: " << std::get<answer>(r).body;
  return {};
}

std::string error_of(const answer& a) {
  return std::string(boost::json::parse(a.body).at("error").as_string());
}

TEST(http_routes, probes_are_answered_or_called_and_take_get_and_head_only) {
  auto cfg = test_config();
  auto h = answered(route(cfg, handlers, req("GET", "/healthz")));
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_EQ(called(route(cfg, handlers, req("HEAD", "/readyz"))).what, op::readyz);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/metrics?x=1"))).what, op::metrics);
  auto post = answered(route(cfg, handlers, req("POST", "/healthz")));
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(error_of(post), "/healthz takes GET and HEAD, not POST");
}

TEST(http_routes, the_api_s_paths_become_calls_with_their_arguments) {
  auto cfg = test_config();
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues"))).what, op::list_queues);
  auto job = called(route(cfg, handlers, req("GET", "//v1/jobs/1-0-p3")));
  EXPECT_EQ(job.what, op::get_job);
  EXPECT_EQ(job.id, "1-0-p3");
  EXPECT_FALSE(job.changes);
  auto dead = called(route(cfg, handlers, req("GET", "/v1/queues/emails/dead")));
  EXPECT_EQ(dead.what, op::list_dead);
  EXPECT_EQ(dead.queue, "emails");
  auto retry = called(
      route(cfg, handlers, req("POST", "/v1/queues/emails/dead/retry", R"({"ids": ["a", "b"]})")));
  EXPECT_EQ(retry.what, op::retry_dead);
  EXPECT_TRUE(retry.changes);
  EXPECT_EQ(retry.ids, (std::vector<std::string>{"a", "b"}));
  auto purge = called(route(cfg, handlers, req("DELETE", "/v1/queues/emails/dead")));
  EXPECT_EQ(purge.what, op::purge_dead);
  EXPECT_TRUE(purge.ids.empty()); // every dead job
  EXPECT_EQ(answered(route(cfg, handlers, req("DELETE", "/v1/queues/emails/dead", "[1]"))).status,
            400);
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/nothing"))).status, 404);
  auto none = answered(route(cfg, handlers, req("PUT", "/v1/queues")));
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(error_of(none), "no such endpoint: PUT /v1/queues");
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/v1/queues/bad%20name/dead"))).status, 400);
  auto progress = called(route(
      cfg, handlers, req("POST", "/v1/queues/emails/jobs/schedule%3Ad%3A1/progress", "{\"p\":1}")));
  EXPECT_EQ(progress.what, op::set_progress);
  EXPECT_EQ(progress.id, "schedule:d:1");
  EXPECT_EQ(progress.text, "{\"p\":1}");
  EXPECT_TRUE(progress.changes);
  auto not_json =
      answered(route(cfg, handlers, req("POST", "/v1/queues/emails/jobs/1-0/progress", "50%")));
  EXPECT_EQ(not_json.status, 400);
  EXPECT_NE(error_of(not_json).find("must be JSON text"), std::string::npos);
  auto too_big = answered(route(
      cfg, handlers,
      req("POST", "/v1/queues/emails/jobs/1-0/progress", "\"" + std::string(5000, 'x') + "\"")));
  EXPECT_EQ(too_big.status, 400);
  EXPECT_NE(error_of(too_big).find("5002 bytes is not allowed: at most 4096"), std::string::npos);
}

// A queue's events (docs/job-control.md, "Events"): where the stream starts, checked before any
// Redis call; Last-Event-ID (a reconnecting EventSource) goes before ?after.
TEST(http_routes, an_events_stream_starts_where_it_is_asked_to) {
  auto cfg = test_config();
  auto e = called(route(cfg, handlers, req("GET", "/v1/queues/emails/events?last=5")));
  EXPECT_EQ(e.what, op::events);
  EXPECT_EQ(e.queue, "emails");
  EXPECT_EQ(e.limit, 5);
  EXPECT_EQ(e.id, "");
  EXPECT_FALSE(e.changes) << "reading is open, like every GET";
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues/emails/events"))).limit, 0);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues/emails/events?after=17-3"))).id,
            "17-3");
  auto resumed = req("GET", "/v1/queues/emails/events?after=1-0");
  resumed.last_event_id = "1796675709264-12";
  EXPECT_EQ(called(route(cfg, handlers, resumed)).id, "1796675709264-12");
  for (const auto* bad : {"?after=x", "?after=1-", "?after=-1", "?after=1-2-3",
                          "?after=99999999999999999999", "?last=-1", "?last=1001", "?last=1e3"})
    EXPECT_EQ(
        answered(route(cfg, handlers, req("GET", std::string("/v1/queues/emails/events") + bad)))
            .status,
        400)
        << bad;
  auto odd = req("GET", "/v1/queues/emails/events");
  odd.last_event_id = "<script>";
  EXPECT_EQ(answered(route(cfg, handlers, odd)).status, 400);
  EXPECT_EQ(answered(route(cfg, handlers, req("POST", "/v1/queues/emails/events"))).status, 404);
}

// Job control's calls (docs/job-control.md): cancel with an optional reason, ?wait= on a lookup
// and on an enqueue (which makes the job waitable), each checked before any Redis call.
TEST(http_routes, cancel_and_wait_are_checked_before_redis) {
  auto cfg = test_config();
  auto c = called(route(
      cfg, handlers, req("POST", "/v1/queues/emails/jobs/order%3A7/cancel", R"({"reason":"x"})")));
  EXPECT_EQ(c.what, op::cancel_job);
  EXPECT_EQ(c.id, "order:7");
  EXPECT_EQ(c.text, "x");
  EXPECT_TRUE(c.changes);
  EXPECT_EQ(called(route(cfg, handlers, req("POST", "/v1/queues/emails/jobs/a/cancel"))).text, "");
  for (const auto* body : {"[1]", R"({"reason":7})", R"({"why":"x"})", "nope"})
    EXPECT_EQ(
        answered(route(cfg, handlers, req("POST", "/v1/queues/emails/jobs/a/cancel", body))).status,
        400)
        << body;
  EXPECT_EQ(answered(route(cfg, handlers,
                           req("POST", "/v1/queues/emails/jobs/a/cancel",
                               "{\"reason\":\"" + std::string(1001, 'r') + "\"}")))
                .status,
            400);
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/v1/queues/emails/jobs/a/cancel"))).status,
            404);
  auto w = called(route(cfg, handlers, req("GET", "/v1/jobs/a?queue=emails&wait=2.5")));
  EXPECT_EQ(w.wait_ms, 2500);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/jobs/a"))).wait_ms, 0);
  for (const auto* bad : {"abc", "-1", "301", "1e9", "", "2s"})
    EXPECT_EQ(
        answered(route(cfg, handlers, req("GET", std::string("/v1/jobs/a?wait=") + bad))).status,
        400)
        << bad;
  auto sync = called(
      route(cfg, handlers, req("POST", "/v1/queues/emails/jobs?wait=30", R"({"payload":{}})")));
  EXPECT_EQ(sync.what, op::post_job);
  EXPECT_EQ(sync.wait_ms, 30000);
  EXPECT_TRUE(sync.job.waitable);
  EXPECT_FALSE(
      called(route(cfg, handlers, req("POST", "/v1/queues/emails/jobs", "{}"))).job.waitable);
  EXPECT_EQ(
      called(route(cfg, handlers, req("GET", "/v1/queues/emails/jobs?state=cancelled"))).state,
      "cancelled");
}

// The dashboard percent-encodes every id and name it puts in a path; the router decodes each
// segment once, after splitting, so ":" (every job a schedule makes), "/", spaces and "%"
// itself reach the call as they were enqueued.
TEST(http_routes, each_path_segment_is_percent_decoded_once) {
  auto cfg = test_config();
  auto job =
      called(route(cfg, handlers, req("GET", "/v1/jobs/schedule%3Aminutely%3A1796638800000")));
  EXPECT_EQ(job.id, "schedule:minutely:1796638800000");
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/jobs/a%2Fb%20c%2525"))).id, "a/b c%25");
  auto in_one = called(route(cfg, handlers, req("GET", "/v1/jobs/x%3A1?queue=a%3Ab")));
  EXPECT_EQ(in_one.id, "x:1");
  EXPECT_EQ(in_one.queue, "a:b"); // one queue's reads only
  EXPECT_TRUE(called(route(cfg, handlers, req("GET", "/v1/jobs/x"))).queue.empty());
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/v1/jobs/x?queue=bad%20name"))).status, 400);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/jobs/a+b%zz%4"))).id, "a+b%zz%4");
  auto stats = called(route(cfg, handlers, req("GET", "/v1/queues/a%3Ab")));
  EXPECT_EQ(stats.what, op::queue_stats);
  EXPECT_EQ(stats.queue, "a:b");
  auto run =
      called(route(cfg, handlers, req("POST", "/v1/queues/a%3Ab/schedules/reports%3Adaily/run")));
  EXPECT_EQ(run.what, op::schedule_action);
  EXPECT_EQ(run.queue, "a:b");
  EXPECT_EQ(run.name, "reports:daily");
  // A decoded "/" is part of the name, not a separator: still four segments, still refused as
  // a queue name ("/" is not allowed in one).
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/v1/queues/a%2Fb/dead"))).status, 400);
}

TEST(http_routes, a_job_is_checked_before_any_redis_call) {
  auto cfg = test_config();
  auto ok = called(route(cfg, handlers,
                         req("POST", "/v1/queues/emails/jobs",
                             R"({"payload": {"to": "a@b", "n": 2.5}, "priority": 7,
                                 "delay_ms": 1500, "attempts": 4, "id": "order-1",
                                 "retry": "10/fixed/30s"})")));
  EXPECT_EQ(ok.what, op::post_job);
  EXPECT_TRUE(ok.consumed_here);
  EXPECT_EQ(ok.job.handler, ""); // the queue's default handler (mailer) runs it
  EXPECT_EQ(ok.job.payload, R"({"to":"a@b","n":2.5})");
  EXPECT_EQ(ok.job.priority, 7);
  EXPECT_EQ(ok.delay_ms, 1500);
  EXPECT_EQ(ok.job.max_attempts, 4);
  EXPECT_EQ(ok.job.id, "order-1");
  EXPECT_TRUE(ok.job.retry.has_value());
  EXPECT_FALSE(
      called(route(cfg, handlers, req("POST", "/v1/queues/other/jobs", R"({"handler": "noop"})")))
          .consumed_here);

  struct bad {
    std::string queue, body, error;
  };
  for (const auto& b : std::vector<bad>{
           {"emails", "not json", "the body must be a JSON object"},
           {"emails", R"({"payload": 1, "payload": 2})", "field \"payload\" is given twice"},
           {"emails", R"({"delayMs": 5})", "unknown field \"delayMs\"; did you mean \"delay_ms\"?"},
           {"default", R"({"payload": {}})", "\"handler\" (a string) is required"},
           {"emails", R"({"handler": "nope"})", "unknown handler \"nope\"; this forq runs: noop"},
           {"emails", R"({"handler": ""})", "\"handler\" must not be empty"},
           {"emails", R"({"id": 7})", "\"id\" must be a string"},
           {"emails", R"({"priority": 10})", "\"priority\": "},
           {"emails", R"({"attempts": 1.5})", "\"attempts\": 1.5 is not allowed"},
           {"emails", R"({"retry": "sometimes"})", "\"retry\": \"sometimes\": "},
       }) {
    auto a = answered(route(cfg, handlers, req("POST", "/v1/queues/" + b.queue + "/jobs", b.body)));
    EXPECT_EQ(a.status, 400) << b.body;
    EXPECT_NE(error_of(a).find(b.error), std::string::npos) << b.body << ": " << error_of(a);
  }
}

TEST(http_routes, changes_need_the_token_or_this_machine) {
  auto cfg = test_config();
  auto remote = req("POST", "/v1/queues/emails/jobs", R"({"handler":"noop"})");
  remote.peer = boost::asio::ip::make_address("10.1.2.3");
  EXPECT_EQ(answered(route(cfg, handlers, remote)).status, 403);
  auto read = req("GET", "/v1/queues");
  read.peer = remote.peer;
  EXPECT_EQ(called(route(cfg, handlers, read)).what, op::list_queues); // reading is open
  cfg.api_open = true;
  EXPECT_EQ(called(route(cfg, handlers, remote)).what, op::post_job);
  cfg.api_token = "0123456789abcdef";
  EXPECT_EQ(answered(route(cfg, handlers, remote)).status, 401);
  remote.bearer_ok = true;
  EXPECT_EQ(called(route(cfg, handlers, remote)).what, op::post_job);
}

} // namespace

namespace {

TEST(http_routes, schedule_paths_become_calls_and_bad_definitions_are_refused_before_redis) {
  auto cfg = test_config();
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues/emails/schedules"))).what,
            op::list_schedules);
  auto put = called(route(cfg, handlers,
                          req("PUT", "/v1/queues/emails/schedules/digest",
                              R"({"cron":"0 8 * * MON","tz":"Europe/Paris","handler":"mailer"})")));
  EXPECT_EQ(put.what, op::put_schedule);
  EXPECT_EQ(put.queue, "emails");
  EXPECT_EQ(put.name, "digest");
  EXPECT_NE(put.schedule.find(R"("cron":"0 8 * * MON")"), std::string::npos) << put.schedule;
  auto run = called(route(cfg, handlers, req("POST", "/v1/queues/emails/schedules/digest/run")));
  EXPECT_EQ(run.what, op::schedule_action);
  EXPECT_EQ(run.action, "run");
  EXPECT_EQ(called(route(cfg, handlers, req("DELETE", "/v1/queues/emails/schedules/digest"))).what,
            op::delete_schedule);

  struct refusal {
    std::string method, target, body;
    int status;
    std::string says;
  };
  for (const auto& r : std::vector<refusal>{
           {"PUT", "/v1/queues/emails/schedules/digest", "{oops", 400, "must be a schedule"},
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"cron":"0 8 * * XYZ"})", 400,
            "\"XYZ\""},
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"every_ms":500})", 400,
            "every 500 ms is not allowed"},
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"every_ms":1000,"evry":1})", 400,
            "no field \"evry\""},
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"name":"x","every_ms":1000})", 400,
            "the path's"},
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"every_ms":1000,"source":"config"})",
            400, "the schedules setting's own"},
           {"PUT", "/v1/queues/emails/schedules/bad name", R"({"every_ms":1000})", 400,
            "is not allowed"},
           // As POST .../jobs: a handler this forq does not run, or none where the queue has
           // no default here, would make a dead job every slot.
           {"PUT", "/v1/queues/emails/schedules/digest", R"({"every_ms":1000,"handler":"nope"})",
            400, "unknown handler \"nope\"; this forq runs: noop, echo, mailer"},
           {"PUT", "/v1/queues/default/schedules/digest", R"({"every_ms":1000})", 400,
            "\"handler\" (a string) is required: queue \"default\" has no default handler here"},
           {"POST", "/v1/queues/emails/schedules", "", 405, "takes GET"},
           {"POST", "/v1/queues/emails/schedules/digest/explode", "", 404, "no such endpoint"},
       }) {
    auto a = answered(route(cfg, handlers, req(r.method, r.target, r.body)));
    EXPECT_EQ(a.status, r.status) << r.target << " " << r.body;
    EXPECT_NE(error_of(a).find(r.says), std::string::npos) << error_of(a);
  }
}

} // namespace

namespace {

request_view browser(std::string method, std::string target, std::string host,
                     std::string origin = {}) {
  auto r = req(std::move(method), std::move(target));
  r.host = std::move(host);
  r.origin = std::move(origin);
  return r;
}

TEST(http_routes, the_dashboard_is_served_with_its_etag_and_a_redirect_to_it) {
  auto cfg = test_config();
  auto root = answered(route(cfg, handlers, req("GET", "/")));
  EXPECT_EQ(root.status, 302);
  ASSERT_EQ(root.headers.size(), 1u);
  EXPECT_EQ(root.headers[0], (std::pair<std::string, std::string>{"Location", "/ui/"}));
  auto index = answered(route(cfg, handlers, req("GET", "/ui/")));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
  auto js = answered(route(cfg, handlers, req("GET", "/ui/app.js")));
  EXPECT_EQ(js.type, "text/javascript; charset=utf-8");
  std::string etag;
  for (const auto& [k, v] : js.headers)
    if (k == "ETag") etag = v;
  ASSERT_FALSE(etag.empty());
  auto again = req("GET", "/ui/app.js");
  again.if_none_match = etag;
  auto same = answered(route(cfg, handlers, again));
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/ui/nope.js"))).status, 404);
  EXPECT_EQ(answered(route(cfg, handlers, req("POST", "/ui/"))).status, 405);

  cfg.ui = forq::config::ui_mode::off;
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/ui/"))).status, 404);
  EXPECT_EQ(answered(route(cfg, handlers, req("GET", "/"))).status, 404);
}

TEST(http_routes, a_host_that_is_not_ours_and_a_cross_origin_change_are_refused) {
  auto cfg = test_config();
  for (const char* ok : {"127.0.0.1:7600", "localhost:7600", "[::1]:7600", "10.1.2.3", ""})
    EXPECT_EQ(called(route(cfg, handlers, browser("GET", "/v1/queues", ok))).what, op::list_queues)
        << ok;
  auto rebound = answered(route(cfg, handlers, browser("GET", "/v1/queues", "evil.example:7600")));
  EXPECT_EQ(rebound.status, 403);
  EXPECT_NE(error_of(rebound).find("http_hosts"), std::string::npos);
  // Probes answer whatever the Host (a monitor may use any name).
  EXPECT_EQ(called(route(cfg, handlers, browser("GET", "/metrics", "evil.example"))).what,
            op::metrics);
  cfg.http_hosts = {"forq.internal"};
  EXPECT_EQ(called(route(cfg, handlers, browser("GET", "/v1/queues", "FORQ.internal:80"))).what,
            op::list_queues);

  // A change from a page of another origin; from the dashboard's own origin it goes through.
  auto cross = answered(
      route(cfg, handlers,
            browser("POST", "/v1/queues/emails/pause", "127.0.0.1:7600", "http://evil.example")));
  EXPECT_EQ(cross.status, 403);
  EXPECT_NE(error_of(cross).find("cross-origin"), std::string::npos);
  EXPECT_EQ(answered(route(cfg, handlers,
                           browser("POST", "/v1/queues/emails/pause", "127.0.0.1:7600", "null")))
                .status,
            403);
  auto site = browser("POST", "/v1/queues/emails/pause", "127.0.0.1:7600");
  site.sec_fetch_site = "cross-site";
  EXPECT_EQ(answered(route(cfg, handlers, site)).status, 403);
  EXPECT_EQ(called(route(cfg, handlers,
                         browser("POST", "/v1/queues/emails/pause", "127.0.0.1:7600",
                                 "http://127.0.0.1:7600")))
                .what,
            op::pause_queue);

  // Read-only: a browser's change is refused; a program's (no Origin) still goes through.
  cfg.ui = forq::config::ui_mode::read_only;
  auto ro = answered(route(
      cfg, handlers,
      browser("POST", "/v1/queues/emails/resume", "127.0.0.1:7600", "http://127.0.0.1:7600")));
  EXPECT_EQ(ro.status, 403);
  EXPECT_NE(error_of(ro).find("read-only"), std::string::npos);
  EXPECT_EQ(called(route(cfg, handlers, req("POST", "/v1/queues/emails/resume"))).what,
            op::resume_queue);
}

} // namespace

namespace {

TEST(http_routes, job_lists_search_and_the_rate_limit_are_checked_before_redis) {
  auto cfg = test_config();
  auto page = called(
      route(cfg, handlers, req("GET", "/v1/queues/emails/jobs?state=delayed&offset=50&limit=25")));
  EXPECT_EQ(page.what, op::list_jobs);
  EXPECT_EQ(page.state, "delayed");
  EXPECT_EQ(page.offset, 50);
  EXPECT_EQ(page.limit, 25);
  for (const auto* state : {"ready", "active"}) {
    auto deep = called(route(cfg, handlers,
                             req("GET", std::string("/v1/queues/emails/jobs?state=") + state +
                                            "&offset=9950&limit=50")));
    EXPECT_EQ(deep.what, op::list_jobs);
    EXPECT_EQ(deep.state, state);
    EXPECT_EQ(deep.offset + deep.limit, 10000);
  }
  auto all = called(route(cfg, handlers, req("GET", "/v1/queues")));
  EXPECT_EQ(all.what, op::list_queues);
  EXPECT_EQ(all.limit, 0); // every queue
  auto some =
      called(route(cfg, handlers, req("GET", "/v1/queues?match=mail&offset=100&limit=100")));
  EXPECT_EQ(some.text, "mail");
  EXPECT_EQ(some.offset, 100);
  EXPECT_EQ(some.limit, 100);
  auto one = called(route(cfg, handlers, req("GET", "/v1/queues/emails")));
  EXPECT_EQ(one.what, op::queue_stats);
  EXPECT_EQ(one.queue, "emails");
  EXPECT_EQ(one.minutes, 0);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues/emails?minutes=60"))).minutes, 60);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/queues?limit=100&minutes=5"))).minutes, 5);
  EXPECT_EQ(called(route(cfg, handlers, req("GET", "/v1/workers"))).what, op::list_workers);
  auto matching = called(
      route(cfg, handlers, req("POST", "/v1/queues/emails/dead/retry", R"({"match": "timeout"})")));
  EXPECT_EQ(matching.what, op::retry_dead);
  EXPECT_EQ(matching.text, "timeout");
  EXPECT_TRUE(matching.ids.empty());
  auto chosen = called(
      route(cfg, handlers, req("DELETE", "/v1/queues/emails/dead", R"({"ids": ["a", "b"]})")));
  EXPECT_EQ(chosen.what, op::purge_dead);
  EXPECT_EQ(chosen.ids.size(), 2u);
  EXPECT_TRUE(chosen.text.empty());
  auto found = called(route(cfg, handlers, req("GET", "/v1/queues/emails/search?q=smtp+550%21")));
  EXPECT_EQ(found.what, op::search_jobs);
  EXPECT_EQ(found.text, "smtp 550!");
  auto limit = called(route(
      cfg, handlers, req("PUT", "/v1/queues/emails/rate_limit", R"({"max": 5, "per_ms": 2000})")));
  EXPECT_EQ(limit.what, op::set_rate_limit);
  EXPECT_EQ(limit.rate_max, 5);
  EXPECT_EQ(limit.rate_ms, 2000);
  EXPECT_EQ(called(route(cfg, handlers, req("DELETE", "/v1/queues/emails/rate_limit"))).rate_max,
            0);
  for (const auto& [method, target, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/v1/queues/emails/jobs?state=waiting", ""},
           {"GET", "/v1/queues/emails/jobs?state=ready&offset=9990&limit=11", ""},
           {"GET", "/v1/queues?limit=0", ""},
           {"GET", "/v1/queues?match=" + std::string(201, 'q'), ""},
           {"GET", "/v1/queues/bad%20name", ""},
           {"GET", "/v1/queues/emails/jobs?limit=0", ""},
           {"GET", "/v1/queues/emails/jobs?limit=501", ""},
           {"GET", "/v1/queues/emails/jobs?offset=-1", ""},
           {"GET", "/v1/queues/emails/search", ""},
           {"PUT", "/v1/queues/emails/rate_limit", R"({"max": 0})"},
           {"PUT", "/v1/queues/emails/rate_limit", R"({"max": 5, "per_ms": 0})"},
           {"PUT", "/v1/queues/emails/rate_limit", "{oops"},
           {"POST", "/v1/queues/emails/dead/retry", R"({"match": ""})"},
           {"POST", "/v1/queues/emails/dead/retry", R"({"match": 5})"},
           {"DELETE", "/v1/queues/emails/dead", R"({"ids": ["a"], "match": "a"})"},
           {"GET", "/v1/queues/emails?minutes=61", ""},
           {"GET", "/v1/queues?minutes=-1", ""},
       })
    EXPECT_EQ(answered(route(cfg, handlers, req(method, target, body))).status, 400)
        << method << " " << target << " " << body;
}

} // namespace
