#include "http/routes.hpp"

#include "forq/names.hpp"
#include "forq/queue/handler.hpp"
#include "forq/queue/limits.hpp"
#include "forq/queue/retry.hpp"
#include "forq_ui.hpp"
#include "http/access.hpp"
#include "json_text.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <tuple>

namespace forq::http {

namespace json = boost::json;

answer error_answer(int status, const std::string& reason) {
  json::object o;
  o["error"] = reason;
  return {status, serialize_utf8(o) + "\n", "application/json"};
}

namespace {

constexpr int bad_request = 400;

// `raw` with each %XX replaced by its byte (and "+" by a space when `plus_is_space`: a query's
// form encoding); a "%" not followed by two hex digits stays as it is.
std::string percent_decoded(std::string_view raw, bool plus_is_space) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    unsigned v = 0;
    if (plus_is_space && raw[i] == '+') {
      out += ' ';
    } else if (raw[i] == '%' && i + 2 < raw.size() &&
               std::from_chars(raw.data() + i + 1, raw.data() + i + 3, v, 16).ptr ==
                   raw.data() + i + 3) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += raw[i];
    }
  }
  return out;
}

// The path's segments, each percent-decoded once (the dashboard encodes every id and name it
// puts in a path, so "a%3Ab" is the queue "a:b" and "x%2Fy" the id "x/y"):
// "/v1/queues/q/dead" -> {"v1", "queues", "q", "dead"}.
std::vector<std::string> segments(std::string_view target) {
  auto q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < target.size()) {
    while (i < target.size() && target[i] == '/')
      ++i;
    auto j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    if (j > i) out.push_back(percent_decoded(target.substr(i, j - i), false));
    i = j;
  }
  return out;
}

std::optional<std::string> string_member(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  if (v && v->is_string()) return std::string(v->as_string());
  return std::nullopt;
}

constexpr std::array<std::string_view, 7> post_job_fields{
    "handler", "payload", "id", "delay_ms", "priority", "attempts", "retry"};

// A whole number within one of the job limits (queue::bounds), into `out`; or why not.
std::optional<std::string> integer(const json::object& o, const queue::bounds& b,
                                   std::int64_t& out) {
  auto* x = o.if_contains(b.name);
  if (!x) return std::nullopt;
  std::optional<std::string> bad;
  if (!x->is_int64())
    bad = serialize_utf8(*x) + " is not allowed: use a whole number from " + std::to_string(b.lo) +
          " to " + std::to_string(b.hi) + std::string(b.unit);
  else if (auto ok = queue::check_bounds(b, x->as_int64()); !ok)
    bad = ok.error().message();
  if (bad) return "\"" + std::string(b.name) + "\": " + *bad;
  out = x->as_int64();
  return std::nullopt;
}

// POST /v1/queues/{queue}/jobs: {"handler": "...", "payload": {...}, "id": "...",
// "delay_ms": N, "priority": N, "attempts": N, "retry": "POLICY"}; the same checks as
// `forq enqueue`.
routed post_job(const config& cfg, const std::vector<std::string>& handlers,
                const std::string& queue, const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return error_answer(bad_request, "the body must be a JSON object");
  if (auto twice = first_repeated_key(body))
    return error_answer(bad_request, "field \"" + twice->path + "\" is given twice; keep one");
  const auto& o = v.as_object();
  // A field this API does not know is refused, not ignored: "delayMs" silently ignored would run
  // a job at once that was meant to wait.
  const std::vector<std::string_view> fields(post_job_fields.begin(), post_job_fields.end());
  for (const auto& [k, unused] : o) {
    (void)unused;
    if (std::find(fields.begin(), fields.end(), std::string_view(k)) != fields.end()) continue;
    auto best = closest(k, fields);
    return error_answer(bad_request, "unknown field \"" + std::string(k) + "\"" +
                                         (best ? "; did you mean \"" + *best + "\"?"
                                               : "; the fields are handler, payload, id, "
                                                 "delay_ms, priority, attempts, retry"));
  }
  if (o.contains("id") && !o.at("id").is_string())
    return error_answer(bad_request, "\"id\" must be a string (1 to 256 bytes): the job's id, "
                                     "which makes the enqueue idempotent");
  api_call call;
  call.what = api_call::op::post_job;
  call.changes = true;
  call.queue = queue;
  std::string default_handler;
  call.consumed_here = false;
  for (const auto& q : cfg.queues)
    if (q.name == queue) {
      default_handler = q.default_handler;
      call.consumed_here = true;
    }
  auto& j = call.job;
  auto handler = string_member(o, "handler");
  if (!handler && o.contains("handler"))
    return error_answer(bad_request, "\"handler\" must be a string");
  if (!handler && default_handler.empty())
    return error_answer(bad_request, "\"handler\" (a string) is required: queue \"" + queue +
                                         "\" has no default handler here");
  if (handler && handler->empty())
    return error_answer(bad_request, "\"handler\" must not be empty");
  j.handler = handler.value_or("");
  if (handler && std::find(handlers.begin(), handlers.end(), j.handler) == handlers.end()) {
    std::string known;
    for (const auto& h : handlers)
      known += (known.empty() ? "" : ", ") + h;
    return error_answer(bad_request,
                        "unknown handler \"" + j.handler + "\"; this forq runs: " + known);
  }
  if (auto* p = o.if_contains("payload")) j.payload = serialize_utf8(*p); // 2.5 stays 2.5
  if (auto id = string_member(o, "id")) j.id = *id;
  if (auto* retry = o.if_contains("retry")) {
    if (!retry->is_string())
      return error_answer(bad_request,
                          "\"retry\" must be a string, e.g. \"10/fixed/30s\" (docs/retries.md)");
    auto parsed = queue::parse_retry(retry->as_string());
    if (!parsed)
      return error_answer(bad_request,
                          "\"retry\": " + serialize_utf8(*retry) + ": " + parsed.error().message());
    j.retry = *parsed;
  }
  std::int64_t priority = 0, attempts = 0;
  for (auto [b, out] : {std::pair{&queue::delay_bounds, &call.delay_ms},
                        std::pair{&queue::priority_bounds, &priority},
                        std::pair{&queue::attempts_bounds, &attempts}})
    if (auto why = integer(o, *b, *out)) return error_answer(bad_request, *why);
  j.priority = static_cast<int>(priority);
  if (attempts > 0) j.max_attempts = static_cast<int>(attempts);
  return call;
}

// {"ids": [...]}, {"match": "TEXT"} (every dead job containing TEXT), or an empty body: every
// dead job.
routed dead_ids(api_call call, const std::string& body) {
  if (body.empty()) return call;
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  const json::array* list = nullptr;
  if (!ec && v.is_object() && v.as_object().size() == 1) {
    if (auto* x = v.as_object().if_contains("ids"); x && x->is_array()) list = &x->as_array();
    if (auto* m = v.as_object().if_contains("match"); m && m->is_string()) {
      call.text = std::string(m->as_string());
      if (call.text.empty() || call.text.size() > 200)
        return error_answer(bad_request, "match is 1 to 200 characters");
      return call;
    }
  }
  if (!list)
    return error_answer(bad_request, "the body must be {\"ids\": [...]} or {\"match\": \"text\"}");
  for (const auto& x : *list) {
    if (!x.is_string()) return error_answer(bad_request, "ids are strings");
    call.ids.emplace_back(x.as_string());
  }
  return call;
}

// PUT /v1/queues/{queue}/schedules/{name}: the body is the definition (its "name", if given,
// must be the path's; "queue" is the path's).
routed put_schedule(const config& cfg, const std::vector<std::string>& handlers, api_call call,
                    const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return error_answer(bad_request, "the body must be a schedule, a JSON object (docs/http.md)");
  auto& o = v.as_object();
  if (auto* n = o.if_contains("name"); n && !(n->is_string() && n->as_string() == call.name))
    return error_answer(bad_request, "the body's name must be the path's (" + call.name + ")");
  if (auto* q = o.if_contains("queue"); q && !(q->is_string() && q->as_string() == call.queue))
    return error_answer(bad_request, "the body's queue must be the path's (" + call.queue + ")");
  o["name"] = call.name;
  auto d = schedule::from_json(json::serialize(o), call.queue, true);
  if (!d) return error_answer(bad_request, d.error().message());
  if (d->from_config)
    return error_answer(bad_request, "source \"config\" is the schedules setting's own");
  // As POST .../jobs refuses them: each slot's job would die for want of its handler.
  if (d->job.handler.empty()) {
    const auto q = std::find_if(cfg.queues.begin(), cfg.queues.end(),
                                [&](const auto& c) { return c.name == call.queue; });
    if (q == cfg.queues.end() || q->default_handler.empty())
      return error_answer(bad_request, "\"handler\" (a string) is required: queue \"" + call.queue +
                                           "\" has no default handler here");
  } else if (std::find(handlers.begin(), handlers.end(), d->job.handler) == handlers.end()) {
    std::string known;
    for (const auto& h : handlers)
      known += (known.empty() ? "" : ", ") + h;
    return error_answer(bad_request,
                        "unknown handler \"" + d->job.handler + "\"; this forq runs: " + known);
  }
  call.what = api_call::op::put_schedule;
  call.schedule = schedule::to_json(*d);
  return call;
}

// /v1/queues/{queue}/schedules[/{name}[/action]]
routed schedules(const config& cfg, const std::vector<std::string>& handlers, api_call call,
                 const std::vector<std::string>& parts, const std::string& method,
                 const std::string& body) {
  if (parts.size() == 4) {
    if (method != "GET")
      return error_answer(405, "/v1/queues/{queue}/schedules takes GET; PUT, DELETE and POST "
                               "go to /v1/queues/{queue}/schedules/{name}");
    call.what = api_call::op::list_schedules;
    return call;
  }
  call.name = parts[4];
  if (auto ok = handlers::check_name(call.name); !ok)
    return error_answer(bad_request, "schedule " + ok.error().message().substr(8));
  if (parts.size() == 5 && method == "PUT")
    return put_schedule(cfg, handlers, std::move(call), body);
  if (parts.size() == 5 && method == "DELETE") {
    call.what = api_call::op::delete_schedule;
    return call;
  }
  if (parts.size() == 6 && method == "POST" &&
      (parts[5] == "pause" || parts[5] == "resume" || parts[5] == "run")) {
    call.what = api_call::op::schedule_action;
    call.action = parts[5];
    return call;
  }
  return error_answer(
      404, "no such endpoint: " + method + " /" + [&] {
        std::string path;
        for (const auto& p : parts)
          path += (path.empty() ? "" : "/") + p;
        return path;
      }());
}

// A query parameter's value, percent-decoded ("+" is a space), or nothing.
std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    return percent_decoded(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                           true);
  }
  return std::nullopt;
}

// ?offset= and ?limit= of a list: whole numbers within bounds.
// ?wait=SECONDS (a number, up to api_call::max_wait_ms): into call.wait_ms; or why not.
std::optional<std::string> wait_of(std::string_view target, api_call& call) {
  auto v = query_param(target, "wait");
  if (!v) return std::nullopt;
  double s = -1;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), s);
  if (ec != std::errc() || end != v->data() + v->size() || !(s >= 0) ||
      s * 1000 > static_cast<double>(api_call::max_wait_ms))
    return "wait is a number of seconds from 0 to " + std::to_string(api_call::max_wait_ms / 1000) +
           ": how long to wait for the job's end";
  call.wait_ms = static_cast<std::int64_t>(s * 1000);
  return std::nullopt;
}

// A stream entry id as an event carries it: <ms>-<n>, or <ms> (19 digits at most: every such
// number is a 64-bit one, as Redis reads them).
bool is_event_id(std::string_view s) {
  auto dash = s.find('-');
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 19 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dash == std::string_view::npos) return digits(s);
  return digits(s.substr(0, dash)) && digits(s.substr(dash + 1));
}

std::optional<std::string> page_of(std::string_view target, api_call& call) {
  for (auto [key, at, hi] : {std::tuple{"offset", &call.offset, std::int64_t{1000000}},
                             std::tuple{"limit", &call.limit, std::int64_t{500}}}) {
    auto v = query_param(target, key);
    if (!v) continue;
    std::int64_t n = -1;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || end != v->data() + v->size() || n < (*key == 'l' ? 1 : 0) || n > hi)
      return std::string(key) + " \"" + *v + "\" is not allowed: a whole number from " +
             (*key == 'l' ? "1" : "0") + " to " + std::to_string(hi);
    *at = n;
  }
  return std::nullopt;
}

// ?minutes=N (0 to 60): the queues' figures by the minute asked for too.
std::optional<std::string> minutes_of(std::string_view target, api_call& call) {
  auto v = query_param(target, "minutes");
  if (!v) return std::nullopt;
  int n = -1;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || end != v->data() + v->size() || n < 0 || n > 60)
    return "minutes \"" + *v + "\" is not allowed: a whole number from 0 to 60";
  call.minutes = n;
  return std::nullopt;
}

// PUT /v1/queues/{queue}/rate_limit {"max": N, "per_ms": M}
routed rate_limit(api_call call, const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return error_answer(bad_request, "the body must be {\"max\": N, \"per_ms\": M}");
  auto& o = v.as_object();
  auto* max = o.if_contains("max");
  if (!max || !max->is_int64())
    return error_answer(bad_request, "\"max\" must be a whole number (jobs per interval)");
  if (auto ok = queue::check_bounds(queue::rate_max_bounds, max->as_int64()); !ok)
    return error_answer(bad_request, "\"max\": " + ok.error().message());
  call.rate_max = max->as_int64();
  call.rate_ms = 1000;
  if (auto* per = o.if_contains("per_ms")) {
    if (!per->is_int64())
      return error_answer(bad_request, "\"per_ms\" must be a whole number of milliseconds");
    if (auto ok = queue::check_bounds(queue::rate_interval_bounds, per->as_int64()); !ok)
      return error_answer(bad_request, "\"per_ms\": " + ok.error().message());
    call.rate_ms = per->as_int64();
  }
  call.what = api_call::op::set_rate_limit;
  return call;
}

// The Host header's name, without its port, lowercased ("[::1]:80" -> "::1").
std::string host_name(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    auto end = name.find(']');
    name = end == std::string_view::npos ? name.substr(1) : name.substr(1, end - 1);
  } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  std::string out(name);
  for (auto& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// Whether this forq answers to the request's Host: none given (not a browser), an IP address
// (which no DNS answer can rebind), localhost, or a name in http_hosts.
bool host_allowed(const config& cfg, std::string_view host) {
  if (host.empty()) return true;
  const auto name = host_name(host);
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  if (!ec || name == "localhost" || name.ends_with(".localhost")) return true;
  return std::find(cfg.http_hosts.begin(), cfg.http_hosts.end(), name) != cfg.http_hosts.end();
}

// A browser's request from a page of another origin: its Origin is neither this Host nor a name
// in http_hosts (a reverse proxy in front may send its own Host), or it says it is cross-site.
bool cross_origin(const config& cfg, const request_view& req) {
  if (!req.origin.empty()) {
    auto origin = std::string_view(req.origin);
    auto scheme = origin.find("://");
    if (origin == "null" || scheme == std::string_view::npos) return true;
    std::string o(origin.substr(scheme + 3)), h(req.host);
    for (auto* x : {&o, &h})
      for (auto& ch : *x)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (o == h) return false;
    const auto name = host_name(o);
    return std::find(cfg.http_hosts.begin(), cfg.http_hosts.end(), name) == cfg.http_hosts.end();
  }
  return !req.sec_fetch_site.empty() && req.sec_fetch_site != "same-origin" &&
         req.sec_fetch_site != "none";
}

// The dashboard's icon, a queue's lines on a blue square: at /ui/favicon.svg (index.html links
// it), and at /favicon.ico too, so a browser that asks for that by itself (a page of the API
// opened in a tab) gets an icon, not a 404. SVG: small, and its kind read from its Content-Type.
answer favicon() {
  answer a{200,
           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
           "<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#2f5bd3\"/>"
           "<path d=\"M4 5h8M4 8h6M4 11h3\" stroke=\"#fff\" stroke-width=\"2\" "
           "stroke-linecap=\"round\"/></svg>\n",
           "image/svg+xml"};
  a.headers.emplace_back("Cache-Control", "max-age=86400");
  return a;
}

// GET /ui/..., the dashboard's files, compiled in (src/ui/).
answer ui_file(std::string_view path, std::string_view if_none_match) {
  if (path.empty()) path = "index.html";
  if (path == "favicon.svg") return favicon();
  for (const auto& f : forq::ui::files) {
    if (f.path != path) continue;
    answer a;
    a.headers.emplace_back("ETag", std::string(f.etag));
    a.headers.emplace_back("Cache-Control", "no-cache"); // kept, and checked with If-None-Match
    if (if_none_match == f.etag) {
      a.status = 304;
      a.type = std::string(f.type);
      return a;
    }
    a.body = std::string(f.body);
    a.type = std::string(f.type);
    return a;
  }
  return error_answer(404, "no such file: /ui/" + std::string(path));
}

} // namespace

routed route(const config& cfg, const std::vector<std::string>& handlers, const request_view& req) {
  auto parts = segments(req.target);
  // HEAD is answered as GET, without the body (the session drops it).
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  const bool changes = method != "GET";
  const bool token_set = !cfg.api_token.empty();
  switch (decide_access(changes, token_set, token_set && req.bearer_ok, cfg.api_open, req.peer)) {
  case access::allowed:
    break;
  case access::needs_token:
    return error_answer(401, "this forq needs Authorization: Bearer <its api_token> for "
                             "requests that change something");
  case access::loopback_only:
    return error_answer(403, "this forq has no api_token, so it takes requests that change "
                             "something from this machine only; set api_token (FORQ_API_TOKEN) "
                             "and send Authorization: Bearer <token>, or start forq with "
                             "--api-open to take them from anyone who can reach it");
  }
  api_call call;
  call.changes = changes;
  const bool probe =
      parts.size() == 1 && (parts[0] == "healthz" || parts[0] == "readyz" || parts[0] == "metrics");
  if (!probe && !host_allowed(cfg, req.host))
    return error_answer(403, "Host \"" + req.host +
                                 "\" is not a name this forq answers to: use localhost or an IP "
                                 "address, or add the name to http_hosts (FORQ_HTTP_HOSTS); this "
                                 "keeps a DNS-rebinding page away from the API");
  if (changes && cross_origin(cfg, req))
    return error_answer(403, "a cross-origin request (Origin \"" + req.origin +
                                 "\") may not change anything here");
  if (changes && config::ui_mode::read_only == cfg.ui &&
      (!req.origin.empty() || !req.sec_fetch_site.empty()))
    return error_answer(403, "the dashboard is read-only (ui = read-only): it shows, and changes "
                             "nothing");
  if (probe) {
    if (method != "GET")
      return error_answer(405, "/" + parts[0] + " takes GET and HEAD, not " + req.method);
    if (parts[0] == "healthz") return answer{200, "ok\n", "text/plain"};
    call.what = parts[0] == "readyz" ? api_call::op::readyz : api_call::op::metrics;
    return call;
  }
  const bool ui_on = cfg.ui != config::ui_mode::off;
  if (parts.empty() && method == "GET" && ui_on) {
    answer a{302, "", "text/plain"};
    a.headers.emplace_back("Location", "/ui/");
    return a;
  }
  if (!parts.empty() && parts[0] == "ui") {
    if (!ui_on) return error_answer(404, "the dashboard is off here (ui = off)");
    if (method != "GET") return error_answer(405, "/ui/ takes GET and HEAD, not " + req.method);
    if (parts.size() == 1 && !std::string_view(req.target).starts_with("/ui/")) {
      answer a{301, "", "text/plain"};
      a.headers.emplace_back("Location", "/ui/");
      return a;
    }
    return ui_file(parts.size() == 2 ? std::string_view(parts[1]) : std::string_view(),
                   req.if_none_match);
  }
  if (parts.size() == 1 && parts[0] == "favicon.ico" && method == "GET" && ui_on) return favicon();
  if (parts.empty() || parts[0] != "v1") return error_answer(404, "no such path: " + req.target);
  if (parts.size() == 2 && parts[1] == "ui" && method == "GET") {
    json::object o;
    o["mode"] = cfg.ui == config::ui_mode::read_only ? "read-only" : "on";
    o["token_required"] = !cfg.api_token.empty();
    o["version"] = FORQ_VERSION;
    return answer{200, serialize_utf8(o) + "\n", "application/json", {}};
  }
  if (parts.size() == 2 && parts[1] == "workers" && method == "GET") {
    call.what = api_call::op::list_workers;
    return call;
  }
  if (parts.size() == 2 && parts[1] == "queues" && method == "GET") {
    call.what = api_call::op::list_queues;
    call.limit = 0; // every queue, unless a page is asked for
    call.text = query_param(req.target, "match").value_or("");
    if (call.text.size() > 200) return error_answer(bad_request, "match is at most 200 characters");
    if (auto why = page_of(req.target, call)) return error_answer(bad_request, *why);
    if (auto why = minutes_of(req.target, call)) return error_answer(bad_request, *why);
    return call;
  }
  if (parts.size() == 3 && parts[1] == "queues" && method == "GET") {
    call.what = api_call::op::queue_stats;
    call.queue = parts[2];
    if (auto ok = queue::check_queue_name(call.queue); !ok)
      return error_answer(bad_request, ok.error().message());
    if (auto why = minutes_of(req.target, call)) return error_answer(bad_request, *why);
    return call;
  }
  if (parts.size() == 3 && parts[1] == "jobs" && method == "GET") {
    call.what = api_call::op::get_job;
    call.id = parts[2];
    // ?queue=Q: look in that queue only (one queue's reads, not every queue's).
    call.queue = query_param(req.target, "queue").value_or("");
    if (!call.queue.empty())
      if (auto ok = queue::check_queue_name(call.queue); !ok)
        return error_answer(bad_request, ok.error().message());
    if (auto why = wait_of(req.target, call)) return error_answer(bad_request, *why);
    return call;
  }
  if (parts.size() >= 4 && parts[1] == "queues") {
    call.queue = parts[2];
    if (auto ok = queue::check_queue_name(call.queue); !ok)
      return error_answer(bad_request, ok.error().message());
    if (parts.size() == 4 && parts[3] == "jobs" && method == "POST") {
      auto posted = post_job(cfg, handlers, call.queue, req.body);
      if (auto* c = std::get_if<api_call>(&posted)) {
        if (auto why = wait_of(req.target, *c)) return error_answer(bad_request, *why);
        if (c->wait_ms > 0) c->job.waitable = true; // its end wakes the wait at once
      }
      return posted;
    }
    if (parts.size() == 6 && parts[3] == "jobs" && parts[5] == "cancel" && method == "POST") {
      call.what = api_call::op::cancel_job;
      call.id = parts[4];
      if (!req.body.empty()) {
        boost::system::error_code ec;
        auto v = json::parse(req.body, ec);
        if (ec || !v.is_object())
          return error_answer(bad_request, "the body, if any, is {\"reason\": \"...\"}");
        for (const auto& [k, x] : v.as_object())
          if (k != "reason" || !x.is_string())
            return error_answer(bad_request,
                                "the body, if any, is {\"reason\": \"...\"} (a string)");
        if (auto why = string_member(v.as_object(), "reason")) call.text = *why;
        if (call.text.size() > 1000 || !is_utf8(call.text))
          return error_answer(bad_request, "\"reason\" is at most 1,000 bytes of UTF-8 text");
      }
      return call;
    }
    if (parts.size() == 6 && parts[3] == "jobs" && parts[5] == "progress" && method == "POST") {
      // A running job's progress from an http handler's app (docs/handlers.md).
      call.what = api_call::op::set_progress;
      call.id = parts[4];
      if (auto ok = queue::check_progress(req.body); !ok)
        return error_answer(bad_request, ok.error().message());
      call.text = req.body;
      return call;
    }
    if (parts.size() == 4 && parts[3] == "events" && method == "GET") {
      // Server-Sent Events (docs/http.md): from after Last-Event-ID (a reconnecting
      // EventSource) or ?after=ID; else the newest ?last=N (default 0), then the new ones.
      call.what = api_call::op::events;
      call.id = !req.last_event_id.empty() ? req.last_event_id
                                           : query_param(req.target, "after").value_or("");
      if (!call.id.empty() && !is_event_id(call.id))
        return error_answer(bad_request, "\"" + call.id.substr(0, 40) +
                                             "\" is not an event id (<ms>-<n>, as sent in id:)");
      call.limit = 0;
      if (auto v = query_param(req.target, "last")) {
        std::int64_t n = -1;
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc{} || end != v->data() + v->size() || n < 0 || n > 1000)
          return error_answer(bad_request, "last \"" + v->substr(0, 40) +
                                               "\" is not allowed: a whole number from 0 to 1000");
        call.limit = n;
      }
      return call;
    }
    if (parts.size() == 4 && parts[3] == "dead" && method == "GET") {
      call.what = api_call::op::list_dead;
      return call;
    }
    if (parts.size() == 5 && parts[3] == "dead" && parts[4] == "retry" && method == "POST") {
      call.what = api_call::op::retry_dead;
      return dead_ids(std::move(call), req.body);
    }
    if (parts.size() == 4 && parts[3] == "dead" && method == "DELETE") {
      call.what = api_call::op::purge_dead;
      return dead_ids(std::move(call), req.body);
    }
    if (parts.size() == 4 && parts[3] == "jobs" && method == "GET") {
      call.what = api_call::op::list_jobs;
      call.state = query_param(req.target, "state").value_or("dead");
      const bool in_streams = call.state == "ready" || call.state == "active";
      if (!in_streams && call.state != "dead" && call.state != "delayed" &&
          call.state != "completed" && call.state != "cancelled")
        return error_answer(bad_request, "state \"" + call.state +
                                             "\" cannot be listed: ready, active, delayed, dead, "
                                             "cancelled or completed");
      if (auto why = page_of(req.target, call)) return error_answer(bad_request, *why);
      if (in_streams && call.offset + call.limit > 10000)
        return error_answer(bad_request, call.state + " jobs are listed 10,000 deep: offset + "
                                                      "limit must be at most 10000");
      return call;
    }
    if (parts.size() == 4 && parts[3] == "search" && method == "GET") {
      call.what = api_call::op::search_jobs;
      call.text = query_param(req.target, "q").value_or("");
      if (call.text.empty() || call.text.size() > 200)
        return error_answer(bad_request, "q must be 1 to 200 characters to look for");
      return call;
    }
    call.create = query_param(req.target, "create").value_or("") == "true";
    if (parts.size() == 4 && parts[3] == "rate_limit" && method == "PUT")
      return rate_limit(std::move(call), req.body);
    if (parts.size() == 4 && parts[3] == "rate_limit" && method == "DELETE") {
      call.what = api_call::op::set_rate_limit;
      return call;
    }
    if (parts.size() == 4 && (parts[3] == "pause" || parts[3] == "resume") && method == "POST") {
      call.what = parts[3] == "pause" ? api_call::op::pause_queue : api_call::op::resume_queue;
      return call;
    }
    if (parts[3] == "schedules" && parts.size() <= 6)
      return schedules(cfg, handlers, std::move(call), parts, method, req.body);
  }
  return error_answer(404, "no such endpoint: " + req.method + " " + req.target);
}

} // namespace forq::http
