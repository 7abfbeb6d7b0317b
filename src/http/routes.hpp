#pragma once

// What an HTTP request asks for, decided without I/O (routes.cpp, docs/http.md): an answer
// straight away (a probe, a refusal, a bad request, a path that does not exist) or one API call
// with its arguments checked, which http.cpp's session then carries out against Redis. Tested
// without a socket or a Redis (tests/unit/http_routes_test.cpp).

#include "config/config.hpp"
#include "forq/queue/producer.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace forq::http {

// An HTTP answer: status code, body and its type.
struct answer {
  int status = 200;
  std::string body;
  std::string type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{}; // more: Location, ETag, ...
};

// {"error": reason} with this status.
answer error_answer(int status, const std::string& reason);

// The parts of a request the route reads.
struct request_view {
  std::string method; // as sent: "GET", "HEAD", "POST", "DELETE", ...
  std::string target; // "/v1/queues/q/jobs?x=1"
  std::string body;
  bool bearer_ok = false; // it carries Authorization: Bearer <api_token> (a token is set)
  boost::asio::ip::address peer;
  std::string host;           // the Host header ("" if none)
  std::string origin;         // the Origin header, sent by browsers ("" if none)
  std::string sec_fetch_site; // Sec-Fetch-Site, sent by browsers ("" if none)
  std::string if_none_match;  // If-None-Match (the dashboard's files)
  std::string last_event_id;  // Last-Event-ID (a reconnecting EventSource)
};

// One call of the API, its arguments checked.
struct api_call {
  enum class op {
    readyz,          // GET /readyz
    metrics,         // GET /metrics
    list_queues,     // GET /v1/queues[?match=TEXT&offset=&limit=&minutes=]
    queue_stats,     // GET /v1/queues/{queue}[?minutes=]
    list_workers,    // GET /v1/workers
    get_job,         // GET /v1/jobs/{id}[?queue=Q]
    post_job,        // POST /v1/queues/{queue}/jobs
    list_dead,       // GET /v1/queues/{queue}/dead
    retry_dead,      // POST /v1/queues/{queue}/dead/retry [{"ids": [...]}]
    purge_dead,      // DELETE /v1/queues/{queue}/dead [{"ids": [...]}]
    list_schedules,  // GET /v1/queues/{queue}/schedules
    put_schedule,    // PUT /v1/queues/{queue}/schedules/{name} {definition}
    delete_schedule, // DELETE /v1/queues/{queue}/schedules/{name}
    schedule_action, // POST /v1/queues/{queue}/schedules/{name}/(pause|resume|run)
    pause_queue,     // POST /v1/queues/{queue}/pause
    resume_queue,    // POST /v1/queues/{queue}/resume
    list_jobs,       // GET /v1/queues/{queue}/jobs?state=ready|active|delayed|dead|completed&...
    search_jobs,     // GET /v1/queues/{queue}/search?q=TEXT
    set_rate_limit,  // PUT /v1/queues/{queue}/rate_limit {"max": N, "per_ms": M}; DELETE: none
    set_progress,    // POST /v1/queues/{queue}/jobs/{id}/progress {any JSON}
    cancel_job,      // POST /v1/queues/{queue}/jobs/{id}/cancel [{"reason": "..."}]
    events,          // GET /v1/queues/{queue}/events[?after=ID|?last=N]: Server-Sent Events
  } what = op::readyz;
  bool changes = false; // it would change something (then a late reply means: maybe)
  std::string queue;
  std::string id; // get_job, set_progress, cancel_job; events: the event id to go on after
  // get_job, post_job: ?wait=SECONDS (up to max_wait_ms): answer once the job has ended
  // (docs/job-control.md); 0: at once.
  std::int64_t wait_ms = 0;
  static constexpr std::int64_t max_wait_ms = 300000;
  queue::new_job job;           // post_job (its run_at_ms is left to the caller: delay_ms)
  std::int64_t delay_ms = 0;    // post_job: run no earlier than this long from now
  bool consumed_here = true;    // post_job: a queue this forq consumes
  std::vector<std::string> ids; // retry_dead, purge_dead; empty: every dead job
  std::string name;             // the schedule's (put_schedule, delete_schedule, schedule_action)
  std::string action;           // schedule_action: pause | resume | run
  std::string schedule;         // put_schedule: the definition as JSON, checked
  std::string state;            // list_jobs
  // search_jobs; list_queues: names containing it; retry/purge_dead: a match; set_progress:
  // the progress (JSON text, checked); cancel_job: the reason
  std::string text;
  std::int64_t offset = 0, limit = 50; // list_jobs, list_queues (limit 0: all)
  int minutes = 0; // list_queues, queue_stats: with each queue's last N minutes (0 to 60)
  std::int64_t rate_max = 0, rate_ms = 0; // set_rate_limit; max 0: no limit
  // pause_queue, resume_queue, set_rate_limit: ?create=true sets up a queue this Redis does not
  // know yet (else such a name, most likely a typo, is a 404, as `forq pause` refuses it).
  bool create = false;
};

using routed = std::variant<answer, api_call>;

// Every answer carries these (the dashboard's and the API's alike).
inline constexpr std::string_view content_security_policy =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// `handlers`: the handler names this forq runs (others are refused at enqueue).
routed route(const config& cfg, const std::vector<std::string>& handlers, const request_view& req);

} // namespace forq::http
