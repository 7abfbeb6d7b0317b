// The JSON API's calls carried out against Redis (api.hpp): what route() decided, through
// forq::client and schedule::, and /metrics for the whole process tree. No Beast here beyond its
// status codes: the session (http.cpp) sends what these return.
#include "http/api.hpp"

#include "forq/client.hpp"
#include "json_text.hpp"
#include "queue/consumer.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace forq::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using process::queue_counters;
using process::shared_histogram;
using process::shared_metrics;
using process::slot_counters;
namespace json = boost::json;
using namespace std::chrono_literals;

reply_t json_reply(bhttp::status s, const json::value& v) {
  return {s, queue::serialize_utf8(v) + "\n", "application/json"};
}

reply_t error_reply(bhttp::status s, const std::string& reason) {
  auto a = error_answer(static_cast<int>(s), reason);
  return {s, std::move(a.body), std::move(a.type)};
}

reply_t to_reply(answer a) {
  return {static_cast<bhttp::status>(a.status), std::move(a.body), std::move(a.type),
          std::move(a.headers)};
}

namespace {

// A request that needed Redis and did not get it: 503, in words that say whether anything was
// done. `changes`: the request would have changed something (then a late reply means: maybe).
reply_t redis_trouble(const forq::error& e, bool changes, std::chrono::milliseconds deadline) {
  const auto& ec = e.code();
  // The words found with the error, when there are more than the code's own.
  const std::string why = e.message() == ec.message() ? std::string() : e.message();
  std::string text;
  if (ec == errc::redis_unavailable)
    text = "Redis: unreachable (no connection within " + std::to_string(deadline.count()) +
           " ms); nothing was done";
  else if (ec == errc::redis_refuses_writes)
    text = "Redis refuses writes: " + (why.empty() ? ec.message() : why) + "; nothing was done";
  else if (ec == errc::redis_not_confirmed)
    text = "not confirmed: " + (why.empty() ? ec.message() : why);
  else if (changes && (ec == errc::redis_timeout || ec == errc::redis_connection_lost))
    text = "Redis: " + ec.message() +
           "; the outcome is unknown: it may or may not have taken effect (look it up; an "
           "enqueue with an \"id\" can be sent again safely: a duplicate is refused)";
  else
    text = "Redis: " + (why.empty() ? ec.message() : ec.message() + ": " + why);
  return error_reply(bhttp::status::service_unavailable, text);
}

std::string fmt_bound(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string metrics_text(const shared_metrics& m, const config& cfg) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  struct counter {
    const char* outcome;
    std::atomic<std::uint64_t> queue_counters::*field;
  };
  const counter outcomes[] = {{"completed", &queue_counters::done},
                              {"retried", &queue_counters::retried},
                              {"dead", &queue_counters::dead},
                              {"recovered", &queue_counters::recovered},
                              {"handed_back", &queue_counters::handed_back},
                              {"cancelled", &queue_counters::cancelled}};
  auto sum = [&](std::size_t q, std::atomic<std::uint64_t> queue_counters::*f) {
    std::uint64_t n = 0;
    for (const auto& slot : m.slots)
      n += (slot.queues[q].*f).load(std::memory_order_relaxed);
    return n;
  };
  const auto nq = std::min(cfg.queues.size(), shared_metrics::max_queues);
  family("forq_jobs_total", "counter",
         "Job attempts ended, by queue and outcome, all workers together.");
  for (std::size_t q = 0; q < nq; ++q)
    for (const auto& c : outcomes)
      out += "forq_jobs_total{queue=\"" + cfg.queues[q].name + "\",outcome=\"" + c.outcome +
             "\"} " + std::to_string(sum(q, c.field)) + "\n";
  family("forq_jobs_fetched_total", "counter", "Jobs fetched from Redis, by queue.");
  for (std::size_t q = 0; q < nq; ++q)
    out += "forq_jobs_fetched_total{queue=\"" + cfg.queues[q].name + "\"} " +
           std::to_string(sum(q, &queue_counters::fetched)) + "\n";
  family("forq_jobs_in_flight", "gauge", "Attempts running now, by queue.");
  for (std::size_t q = 0; q < nq; ++q)
    out += "forq_jobs_in_flight{queue=\"" + cfg.queues[q].name + "\"} " +
           std::to_string(sum(q, &queue_counters::in_flight)) + "\n";
  auto histogram = [&](const char* name, const char* help, shared_histogram queue_counters::*h) {
    family(name, "histogram", help);
    for (std::size_t q = 0; q < nq; ++q) {
      std::uint64_t cumulative = 0, sum_us = 0;
      std::array<std::uint64_t, 12> counts{};
      for (const auto& slot : m.slots) {
        const auto& x = slot.queues[q].*h;
        for (std::size_t b = 0; b < counts.size(); ++b)
          counts[b] += x.counts[b].load(std::memory_order_relaxed);
        sum_us += x.sum_us.load(std::memory_order_relaxed);
      }
      const auto label = "queue=\"" + cfg.queues[q].name + "\"";
      const auto& bounds = queue::consumer::histogram::bounds;
      for (std::size_t b = 0; b < counts.size(); ++b) {
        cumulative += counts[b];
        std::string le = b < bounds.size() ? fmt_bound(bounds[b]) : "+Inf";
        out += std::string(name) + "_bucket{" + label + ",le=\"" + le + "\"} " +
               std::to_string(cumulative) + "\n";
      }
      out += std::string(name) + "_sum{" + label + "} " +
             fmt_bound(static_cast<double>(sum_us) / 1e6) + "\n";
      out += std::string(name) + "_count{" + label + "} " + std::to_string(cumulative) + "\n";
    }
  };
  histogram("forq_job_pickup_seconds",
            "From a job becoming ready (its stream entry) to its attempt starting.",
            &queue_counters::pickup);
  histogram("forq_job_run_seconds", "The handler's time per attempt.", &queue_counters::run);
  histogram("forq_redis_round_trip_seconds",
            "Round trips to Redis of the consumers' acknowledgements.",
            &queue_counters::round_trip);
  family("forq_worker_restarts_total", "counter", "Workers the master started again.");
  out += "forq_worker_restarts_total " + std::to_string(m.restarts.load()) + "\n";
  family("forq_workers", "gauge", "Worker processes running now.");
  out += "forq_workers " + std::to_string(m.workers.load()) + "\n";
  family("forq_redis_reconnects_total", "counter",
         "Connections to Redis made again after a loss, all workers together.");
  std::uint64_t reconnects = 0;
  for (const auto& slot : m.slots)
    reconnects += slot.reconnects.load(std::memory_order_relaxed);
  out += "forq_redis_reconnects_total " + std::to_string(reconnects) + "\n";
  return out;
}

// A job as a list answer shows it (GET .../jobs, .../search; docs/http.md): each value that can
// be long cut to its first preview_bytes bytes, so a page of 50 jobs with 900 KB results is tens
// of KB, not 45 MB, every refresh. GET /v1/jobs/{id} gives the whole job.
constexpr std::size_t preview_bytes = 300;
constexpr std::size_t preview_errors = 10; // failed attempts' errors: the last 10, as forq keeps

// The value cut to preview_bytes bytes of text at a character's start (a value that is not a
// string as its JSON text), or nothing when it is short enough as it is.
std::optional<json::value> preview_value(const json::value& v) {
  auto prefix = [](std::string_view s) {
    std::size_t n = preview_bytes;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) // inside a character
      --n;
    return json::value(json::string(s.substr(0, n)));
  };
  if (v.is_string())
    return v.get_string().size() > preview_bytes ? std::optional(prefix(v.get_string()))
                                                 : std::nullopt;
  if (!v.is_object() && !v.is_array()) return std::nullopt; // a number, true, false, null
  const auto text = json::serialize(v);
  return text.size() > preview_bytes ? std::optional(prefix(text)) : std::nullopt;
}

// The job with payload, result, last_error, reason, each attempt's error and a producer's own
// fields cut, and "truncated": the names of those that were.
json::object job_preview(json::object job) {
  json::array truncated;
  auto cut_in_place = [](json::value& v) {
    auto c = preview_value(v);
    if (c) v = std::move(*c);
    return c.has_value();
  };
  for (std::string_view k : {"payload", "result", "last_error", "reason"})
    if (auto* v = job.if_contains(k); v && cut_in_place(*v)) truncated.emplace_back(k);
  if (auto* v = job.if_contains("errors"); v && v->is_array()) {
    auto& errors = v->get_array();
    bool any = errors.size() > preview_errors;
    if (any)
      errors.erase(errors.begin(), errors.end() - static_cast<std::ptrdiff_t>(preview_errors));
    for (auto& e : errors) {
      auto* text = e.is_object() ? e.get_object().if_contains("error") : &e;
      if (text && cut_in_place(*text)) any = true;
    }
    if (any) truncated.emplace_back("errors");
  }
  if (auto* v = job.if_contains("fields"); v && v->is_object()) {
    bool any = false;
    for (auto& f : v->get_object())
      any = cut_in_place(f.value()) || any;
    if (any) truncated.emplace_back("fields");
  }
  if (!truncated.empty()) job["truncated"] = std::move(truncated);
  return job;
}

// ?wait=: the job once it has ended, or as it stands when the wait ends (200 either way; 404
// if no such job). The wait holds no connection (http/waits.hpp).
asio::awaitable<reply_t> wait_reply(http_context& ctx, const std::string& queue,
                                    const std::string& id, std::int64_t wait_ms,
                                    bhttp::status found_status = bhttp::status::ok) {
  if (ctx.waits >= http_context::max_waits)
    co_return error_reply(bhttp::status::service_unavailable,
                          "this worker has " + std::to_string(ctx.waits) +
                              " waits open, its most; ask again without ?wait, or later");
  if (!ctx.feed) ctx.feed = std::make_unique<finished_feed>(*ctx.conn);
  ++ctx.waits;
  struct count_down {
    std::size_t& n;
    ~count_down() { --n; }
  } leave{ctx.waits};
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  auto done = co_await ctx.feed->wait(queue, id, until, ctx.redis_deadline);
  if (!done) co_return redis_trouble(done.error(), false, ctx.redis_deadline);
  if (!*done)
    co_return error_reply(bhttp::status::not_found, "no job " + id + " in queue " + queue);
  co_return json_reply(found_status, (*done)->to_json());
}

// POST /v1/queues/{queue}/jobs, its job checked by route(): the enqueue, and a warning when no
// worker has started on a queue this forq does not consume.
asio::awaitable<reply_t> post_job(http_context& ctx, client& c, api_call& call) {
  if (call.delay_ms > 0) call.job.run_at_ms = queue::epoch_ms() + call.delay_ms;
  auto r = co_await c.enqueue(call.queue, call.job);
  if (!r) {
    if (r.error() == errc::invalid_job)
      co_return error_reply(bhttp::status::bad_request, r.error().message());
    co_return redis_trouble(r.error(), true, ctx.redis_deadline);
  }
  if (call.wait_ms > 0) // a synchronous call: the job once it has ended
    co_return co_await wait_reply(ctx, call.queue, r->id, call.wait_ms,
                                  r->duplicate ? bhttp::status::ok : bhttp::status::created);
  json::object out;
  out["id"] = r->id;
  out["queue"] = call.queue;
  out["duplicate"] = r->duplicate;
  // Added either way (producers may start before workers), but a typo should not go unsaid:
  // a queue this forq does not consume and no worker has started on gets a warning.
  if (!call.consumed_here) {
    auto has = co_await c.has_workers(call.queue);
    if (has && !*has) {
      std::string here;
      for (const auto& q : ctx.cfg->queues)
        here += (here.empty() ? "" : ", ") + q.name;
      out["warning"] = "no worker has started on queue \"" + call.queue +
                       "\" yet; the job waits until one does (this forq consumes: " + here + ")";
    }
  }
  co_return json_reply(r->duplicate ? bhttp::status::ok : bhttp::status::created, out);
}

// The schedules of the queues this forq consumes, from Redis (the truth every host shares: a
// schedule no keeper runs any more shows as overdue here). Nothing when Redis does not answer.
asio::awaitable<std::string> schedule_metrics(redis::connection& conn, const config& cfg,
                                              redis::exec_options within) {
  std::vector<schedule::status> all;
  for (const auto& q : cfg.queues) {
    auto some = co_await schedule::list(conn, q.name, within);
    if (!some) co_return "# schedules: Redis did not answer (" + some.error().message() + ")\n";
    all.insert(all.end(), some->begin(), some->end());
  }
  if (all.empty()) co_return std::string();
  auto now = co_await schedule::redis_now(conn, within);
  if (!now) co_return "# schedules: Redis did not answer (" + now.error().message() + ")\n";
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto labels = [](const schedule::status& s) {
    return "queue=\"" + s.def.queue + "\",schedule=\"" + s.def.name + "\"";
  };
  auto seconds = [](std::int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ms) / 1000.0);
    return std::string(buf);
  };
  family("forq_schedule_runs_total", "counter", "Jobs a schedule made (slots run, and runs now).");
  for (const auto& s : all)
    out += "forq_schedule_runs_total{" + labels(s) + "} " + std::to_string(s.runs) + "\n";
  family("forq_schedule_skipped_total", "counter",
         "Slots a schedule did not run, by reason: missed (its missed-run policy) or overlap "
         "(its previous run was still queued or running).");
  for (const auto& s : all) {
    out += "forq_schedule_skipped_total{" + labels(s) + ",reason=\"missed\"} " +
           std::to_string(s.skipped_missed) + "\n";
    out += "forq_schedule_skipped_total{" + labels(s) + ",reason=\"overlap\"} " +
           std::to_string(s.skipped_overlap) + "\n";
  }
  family("forq_schedule_last_late_seconds", "gauge",
         "How long after its slot a schedule's last run was enqueued (Redis's clock).");
  for (const auto& s : all)
    if (s.last_late_ms)
      out +=
          "forq_schedule_last_late_seconds{" + labels(s) + "} " + seconds(*s.last_late_ms) + "\n";
  family("forq_schedule_overdue_seconds", "gauge",
         "How far past its next slot a schedule is now: 0 while it keeps time; growing when no "
         "keeper runs it (no worker consumes its queue, or Redis refuses its script).");
  for (const auto& s : all)
    out += "forq_schedule_overdue_seconds{" + labels(s) + "} " +
           seconds(s.next_ms && !s.held ? std::max<std::int64_t>(0, *now - *s.next_ms) : 0) + "\n";
  co_return out;
}

// The schedule endpoints (docs/http.md), through schedule:: on the worker's command connection.
template <class RedisDown>
asio::awaitable<reply_t> schedule_call(redis::connection& conn, const api_call& call,
                                       redis::exec_options within, RedisDown redis_down) {
  using op = api_call::op;
  auto no_such = [&] {
    return error_reply(bhttp::status::not_found,
                       "queue " + call.queue + " has no schedule \"" + call.name + "\"");
  };
  auto refused = [&](const forq::error& e) {
    return e == errc::invalid_value ? error_reply(bhttp::status::bad_request, e.message())
                                    : redis_down(e);
  };
  if (call.what == op::list_schedules) {
    auto all = co_await schedule::list(conn, call.queue, within);
    if (!all) co_return refused(all.error());
    json::array out;
    for (const auto& one : *all)
      out.push_back(one.to_json());
    co_return json_reply(bhttp::status::ok, out);
  }
  if (call.what == op::put_schedule) {
    auto d = schedule::from_json(call.schedule, call.queue);
    if (!d) co_return refused(d.error());
    auto u = co_await schedule::upsert(conn, *d, within);
    if (!u) co_return refused(u.error());
    json::object o;
    o["queue"] = call.queue;
    o["name"] = call.name;
    o["result"] = u->what;
    o["version"] = u->version;
    co_return json_reply(u->what == "added" ? bhttp::status::created : bhttp::status::ok, o);
  }
  expected<bool> done = false;
  json::object o;
  o["queue"] = call.queue;
  o["name"] = call.name;
  if (call.what == op::delete_schedule) {
    done = co_await schedule::remove(conn, call.queue, call.name, within);
    o["removed"] = true;
  } else if (call.action == "run") {
    auto id = co_await schedule::run_now(conn, call.queue, call.name, within);
    if (!id) co_return refused(id.error());
    if (!*id) co_return no_such();
    o["id"] = **id;
    co_return json_reply(bhttp::status::created, o);
  } else {
    if (call.action == "pause") // (not a ?: of two co_awaits: GCC 12 may run both)
      done = co_await schedule::pause(conn, call.queue, call.name, within);
    else
      done = co_await schedule::resume(conn, call.queue, call.name, within);
    o["state"] = call.action == "pause" ? "paused" : "active";
  }
  if (!done) co_return refused(done.error());
  if (!*done) co_return no_such();
  co_return json_reply(bhttp::status::ok, o);
}

} // namespace

// Carries out what route() decided, against Redis through forq::client.
asio::awaitable<reply_t> run_call(http_context& ctx, api_call call) {
  using op = api_call::op;
  if (call.what == op::readyz) {
    auto why = ctx.not_ready();
    if (why.empty()) co_return reply_t{bhttp::status::ok, "ready\n", "text/plain"};
    co_return reply_t{bhttp::status::service_unavailable, "not ready: " + why + "\n", "text/plain"};
  }
  // Every Redis call of this request gives up at one deadline: an answer, never a hang, and
  // nothing still queued for Redis takes effect after the client was told 503.
  redis::exec_options within;
  within.deadline = std::chrono::steady_clock::now() + ctx.redis_deadline;
  if (call.what == op::metrics) {
    // (Not one expression with the co_await in it: GCC 12 loses temporaries across it.)
    // The schedules' figures wait for Redis a second at most: the tree's own come regardless.
    redis::exec_options briefly;
    briefly.deadline = std::chrono::steady_clock::now() +
                       std::min<std::chrono::milliseconds>(ctx.redis_deadline, 1s);
    auto schedules = co_await schedule_metrics(*ctx.conn, *ctx.cfg, briefly);
    auto text = metrics_text(*ctx.metrics, *ctx.cfg);
    text += schedules;
    co_return reply_t{bhttp::status::ok, std::move(text), "text/plain; version=0.0.4"};
  }
  client c(*ctx.conn, within);
  const bool changes = call.changes;
  auto redis_down = [&](const forq::error& e) {
    return redis_trouble(e, changes, ctx.redis_deadline);
  };
  // A queue this Redis has never seen is most likely a typo: reading it says so (404) rather
  // than answering zeros, and pausing or limiting it sets nothing up unless ?create=true.
  const bool needs_known_queue =
      call.what == op::queue_stats ||
      (!call.create && (call.what == op::pause_queue || call.what == op::resume_queue ||
                        call.what == op::set_rate_limit));
  if (needs_known_queue) {
    auto known = co_await c.known(call.queue);
    if (!known) co_return redis_down(known.error());
    if (!*known)
      co_return error_reply(
          bhttp::status::not_found,
          "no queue " + call.queue + " on this Redis (no worker started on it, nothing enqueued" +
              (call.what == op::queue_stats ? std::string(")")
                                            : "); add ?create=true to set it up anyway"));
  }
  switch (call.what) {
  case op::list_queues: {
    // A page of the names (sorted) that contain `match`: only its queues are read, so the
    // dashboard's overview of 1,000 queues costs Redis a page's worth. X-Total-Count: how many
    // names match.
    auto names = co_await c.queues();
    if (!names) co_return redis_down(names.error());
    std::erase_if(*names, [&](const std::string& n) {
      return !call.text.empty() && n.find(call.text) == std::string::npos;
    });
    const auto total = names->size();
    const auto from = std::min(total, static_cast<std::size_t>(call.offset));
    const auto to =
        call.limit > 0 ? std::min(total, from + static_cast<std::size_t>(call.limit)) : total;
    std::vector<std::string> page(names->begin() + static_cast<std::ptrdiff_t>(from),
                                  names->begin() + static_cast<std::ptrdiff_t>(to));
    auto stats = co_await c.stats_many(page, call.minutes);
    if (!stats) co_return redis_down(stats.error());
    json::array all;
    for (const auto& s : *stats)
      all.push_back(s.to_json());
    auto out = json_reply(bhttp::status::ok, all);
    out.headers.emplace_back("X-Total-Count", std::to_string(total));
    co_return out;
  }
  case op::list_workers: {
    auto all = co_await c.workers();
    if (!all) co_return redis_down(all.error());
    json::array out;
    for (auto& w : *all)
      out.push_back(std::move(w));
    co_return json_reply(bhttp::status::ok, out);
  }
  case op::queue_stats: {
    std::vector<std::string> one;
    one.push_back(call.queue);
    auto s = co_await c.stats_many(one, call.minutes);
    if (!s) co_return redis_down(s.error());
    co_return json_reply(bhttp::status::ok, s->front().to_json());
  }
  case op::get_job: {
    expected<std::optional<job_info>> info = std::optional<job_info>();
    if (call.queue.empty())
      info = co_await c.find_job(call.id);
    else
      info = co_await c.get_job(call.queue, call.id);
    if (!info) co_return redis_down(info.error());
    if (!*info) co_return error_reply(bhttp::status::not_found, "no job " + call.id);
    if (call.wait_ms > 0) co_return co_await wait_reply(ctx, (*info)->queue, call.id, call.wait_ms);
    co_return json_reply(bhttp::status::ok, (*info)->to_json());
  }
  case op::events: {
    if (ctx.event_streams >= http_context::max_event_streams)
      co_return error_reply(bhttp::status::service_unavailable,
                            "this worker serves " + std::to_string(ctx.event_streams) +
                                " event streams, its most; try again later");
    // A name this Redis has never seen is most likely a typo: said, not streamed as silence.
    auto known = co_await c.known(call.queue);
    if (!known) co_return redis_down(known.error());
    if (!*known) co_return error_reply(bhttp::status::not_found, "no queue " + call.queue);
    reply_t r;
    r.events = std::move(call);
    co_return r;
  }
  case op::cancel_job: {
    auto done = co_await c.cancel(call.queue, call.id, "api", call.text);
    if (!done) {
      if (done.error() == errc::invalid_value)
        co_return error_reply(bhttp::status::bad_request, done.error().message());
      co_return redis_down(done.error());
    }
    if (!*done)
      co_return error_reply(bhttp::status::not_found,
                            "no job " + call.id + " in queue " + call.queue);
    json::object o;
    o["outcome"] = (*done)->outcome;
    o["job"] = (*done)->job.to_json();
    // An ended job is not changed: 409, saying how it ended.
    co_return json_reply(
        (*done)->outcome == "terminal" ? bhttp::status::conflict : bhttp::status::ok, o);
  }
  case op::post_job:
    co_return co_await post_job(ctx, c, call);
  case op::list_dead: {
    auto dead = co_await c.dead(call.queue, 100);
    if (!dead) co_return redis_down(dead.error());
    json::array all;
    for (const auto& d : *dead)
      all.push_back(d.to_json()); // the one shape of a job, as GET .../jobs/{id} gives it
    co_return json_reply(bhttp::status::ok, all);
  }
  case op::retry_dead:
  case op::purge_dead: {
    const bool retry = call.what == op::retry_dead;
    std::optional<std::size_t> matched;
    if (!call.text.empty()) { // {"match": TEXT}: the ids of the dead jobs containing it
      auto found = co_await c.dead_matching(call.queue, call.text);
      if (!found) co_return redis_down(found.error());
      call.ids = std::move(*found);
      matched = call.ids.size();
    }
    expected<std::size_t> n = std::size_t{0};
    if (matched && call.ids.empty()) // none matched: nothing to do (no ids would mean all)
      n = std::size_t{0};
    else if (retry)
      n = co_await c.retry_dead(call.queue, call.ids);
    else
      n = co_await c.purge_dead(call.queue, call.ids);
    if (!n) co_return redis_down(n.error());
    json::object o;
    o[retry ? "retried" : "purged"] = *n;
    if (matched) o["matched"] = *matched;
    co_return json_reply(bhttp::status::ok, o);
  }
  case op::pause_queue:
  case op::resume_queue: {
    const bool pause = call.what == op::pause_queue;
    expected<> done;
    if (pause)
      done = co_await c.pause(call.queue);
    else
      done = co_await c.resume(call.queue);
    if (!done) co_return redis_down(done.error());
    json::object o;
    o["queue"] = call.queue;
    o["paused"] = pause;
    co_return json_reply(bhttp::status::ok, o);
  }
  case op::list_jobs:
  case op::search_jobs: {
    expected<std::vector<job_info>> jobs = std::vector<job_info>{};
    if (call.what == op::list_jobs)
      jobs = co_await c.list_jobs(call.queue, call.state, static_cast<std::size_t>(call.offset),
                                  static_cast<std::size_t>(call.limit));
    else
      jobs = co_await c.search(call.queue, call.text);
    if (!jobs) co_return redis_down(jobs.error());
    json::array all;
    for (const auto& j : *jobs)
      all.push_back(job_preview(j.to_json()));
    co_return json_reply(bhttp::status::ok, all);
  }
  case op::set_progress: {
    const auto now = std::chrono::steady_clock::now();
    auto key = call.queue + '\n' + call.id;
    if (auto at = ctx.progress_at.find(key);
        at != ctx.progress_at.end() && now - at->second < 100ms) {
      auto r = error_reply(bhttp::status::too_many_requests,
                           "progress of job " + call.id +
                               " was reported less than 100 ms ago: send the latest at most "
                               "every 100 ms");
      r.headers.emplace_back("Retry-After", "1");
      co_return r;
    }
    if (ctx.progress_at.size() > 10000) // forget jobs not heard from for a second
      std::erase_if(ctx.progress_at, [&](const auto& e) { return now - e.second > 1s; });
    ctx.progress_at[key] = now;
    auto state = co_await c.set_progress(call.queue, call.id, call.text);
    if (!state) {
      if (state.error() == errc::invalid_value)
        co_return error_reply(bhttp::status::bad_request, state.error().message());
      co_return redis_down(state.error());
    }
    if (state->empty())
      co_return error_reply(bhttp::status::not_found,
                            "no job " + call.id + " in queue " + call.queue);
    if (*state != "active")
      co_return error_reply(bhttp::status::conflict, "job " + call.id + " is not running (" +
                                                         *state +
                                                         "): progress is for a running attempt");
    co_return reply_t{bhttp::status::no_content, "", "text/plain"};
  }
  case op::set_rate_limit: {
    std::optional<std::pair<std::int64_t, std::chrono::milliseconds>> limit;
    if (call.rate_max > 0) limit.emplace(call.rate_max, std::chrono::milliseconds(call.rate_ms));
    auto done = co_await c.set_rate_limit(call.queue, limit);
    if (!done) co_return redis_down(done.error());
    json::object o;
    o["queue"] = call.queue;
    if (limit) {
      json::object l;
      l["max"] = call.rate_max;
      l["per_ms"] = call.rate_ms;
      o["rate_limit"] = l;
    } else {
      o["rate_limit"] = nullptr;
    }
    co_return json_reply(bhttp::status::ok, o);
  }
  case op::list_schedules:
  case op::put_schedule:
  case op::delete_schedule:
  case op::schedule_action:
    co_return co_await schedule_call(*ctx.conn, call, within, redis_down);
  case op::readyz:
  case op::metrics:
    break;
  }
  co_return error_reply(bhttp::status::internal_server_error, "unhandled API call");
}

} // namespace forq::http
