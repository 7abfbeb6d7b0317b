#include "schedule/schedule.hpp"

#include "forq/client.hpp"
#include "forq/names.hpp"
#include "queue/protocol.hpp"
#include "queue/scripts.hpp"
#include "redis/script.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace forq::schedule {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr std::int64_t year_ms = 366LL * 86400 * 1000;
constexpr std::size_t most_missed = 100; // missed = all: at most this many slots run late
// A slot's job marker lives two intervals, between an hour and a week: long enough for `forq job`
// to find the job by its id, short enough that a schedule every second keeps some thousands.
std::string marker_ttl(std::int64_t slot, std::optional<std::int64_t> next) {
  const std::int64_t interval_s = next ? (*next - slot) / 1000 : 604800;
  return std::to_string(std::clamp<std::int64_t>(2 * interval_s, 3600, 604800));
}

// A queue's schedule keys, under its hash tag.
struct schedule_keys {
  explicit schedule_keys(std::string_view queue)
      : schedules("forq:{" + std::string(queue) + "}:schedules")
      , state("forq:{" + std::string(queue) + "}:schedule_state")
      , due("forq:{" + std::string(queue) + "}:schedule_due") {}
  std::string schedules, state, due;
};

error refuse(std::string why) {
  return error(errc::invalid_value, std::move(why));
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

} // namespace

boost::asio::awaitable<expected<std::int64_t>> redis_now(redis::connection& conn,
                                                         redis::exec_options opts) {
  const redis::request time("TIME");
  auto r = redis::connection::single(co_await conn.exec(time, opts));
  if (!r) co_return r.error();
  if (!r->is_array() || r->elements().size() != 2) co_return error(errc::redis_protocol, "TIME");
  auto s = to_int(r->elements()[0].str()), us = to_int(r->elements()[1].str());
  if (!s || !us) co_return error(errc::redis_protocol, "TIME");
  co_return *s * 1000 + *us / 1000;
}

std::string_view to_string(missed_policy m) {
  switch (m) {
  case missed_policy::skip:
    return "skip";
  case missed_policy::all:
    return "all";
  case missed_policy::latest:
    break;
  }
  return "latest";
}

std::string_view to_string(overlap_policy o) {
  switch (o) {
  case overlap_policy::skip:
    return "skip";
  case overlap_policy::queue_one:
    return "queue-one";
  case overlap_policy::allow:
    break;
  }
  return "allow";
}

std::optional<missed_policy> missed_from(std::string_view text) {
  for (auto m : {missed_policy::skip, missed_policy::latest, missed_policy::all})
    if (text == to_string(m)) return m;
  return std::nullopt;
}

std::optional<overlap_policy> overlap_from(std::string_view text) {
  for (auto o : {overlap_policy::allow, overlap_policy::skip, overlap_policy::queue_one})
    if (text == to_string(o)) return o;
  return std::nullopt;
}

std::string status::state() const {
  if (!unreadable.empty()) return "unreadable";
  if (paused) return "paused";
  return next_ms ? "active" : "ended";
}

json::object status::to_json() const {
  if (!unreadable.empty()) {
    json::object u;
    u["name"] = def.name;
    u["queue"] = def.queue;
    u["state"] = state();
    u["error"] = unreadable;
    u["next_ms"] = next_ms ? json::value(*next_ms) : json::value(nullptr);
    return u;
  }
  auto o = json::parse(schedule::to_json(def)).as_object();
  o["queue"] = def.queue;
  o["version"] = version;
  o["state"] = state();
  o["next_ms"] = next_ms ? json::value(*next_ms) : json::value(nullptr);
  o["last_ms"] = last_ms ? json::value(*last_ms) : json::value(nullptr);
  o["last_job_id"] = last_id;
  o["runs"] = runs;
  o["skipped"] = skipped;
  o["skipped_missed"] = skipped_missed;
  o["skipped_overlap"] = skipped_overlap;
  o["last_late_ms"] = last_late_ms ? json::value(*last_late_ms) : json::value(nullptr);
  return o;
}

std::string to_json(const definition& d) {
  json::object o;
  o["name"] = d.name;
  if (!d.cron_text.empty()) {
    o["cron"] = d.cron_text;
    if (!d.zone.empty()) o["tz"] = d.zone;
  } else {
    o["every_ms"] = d.every.count();
  }
  if (!d.job.handler.empty()) o["handler"] = d.job.handler;
  boost::system::error_code ec; // checked by check_job: JSON text
  auto payload = json::parse(d.job.payload, ec);
  o["payload"] = ec ? json::value(d.job.payload) : payload;
  if (d.job.priority != 0) o["priority"] = d.job.priority;
  if (d.job.max_attempts) o["max_attempts"] = *d.job.max_attempts;
  o["missed"] = to_string(d.missed);
  o["grace_ms"] = d.grace.count();
  if (d.overlap != overlap_policy::allow) o["overlap"] = to_string(d.overlap);
  if (d.start_ms) o["start_ms"] = *d.start_ms;
  if (d.end_ms) o["end_ms"] = *d.end_ms;
  if (d.limit) o["limit"] = *d.limit;
  if (d.from_config) o["source"] = "config";
  return serialize_utf8(o);
}

expected<definition> from_json(std::string_view text, std::string_view queue, bool strict) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return refuse("a schedule must be a JSON object");
  const auto& o = v.as_object();
  definition d;
  d.queue = queue;
  auto str = [&](std::string_view key) -> std::optional<std::string> {
    auto* x = o.if_contains(key);
    if (x && x->is_string()) return std::string(x->as_string());
    return std::nullopt;
  };
  auto num = [&](std::string_view key) -> std::optional<std::int64_t> {
    auto* x = o.if_contains(key);
    if (x && x->is_int64()) return x->as_int64();
    return std::nullopt;
  };
  d.name = str("name").value_or("");
  d.cron_text = str("cron").value_or("");
  d.zone = str("tz").value_or("");
  d.every = milliseconds(num("every_ms").value_or(0));
  d.job.handler = str("handler").value_or("");
  // Any JSON value; a string holding JSON text is that text (how `forq schedule add` and older
  // definitions give it), any other string is itself.
  if (auto* p = o.if_contains("payload")) {
    boost::system::error_code pec;
    if (p->is_string()) json::parse(p->as_string(), pec);
    d.job.payload = p->is_string() && !pec ? std::string(p->as_string()) : serialize_utf8(*p);
  } else {
    d.job.payload = "{}";
  }
  for (const char* key : {"priority", "max_attempts"})
    if (auto n = num(key); n && (*n < -1000000 || *n > 1000000))
      return refuse("schedule field \"" + std::string(key) + "\" " + std::to_string(*n) +
                    " is out of range");
  d.job.priority = static_cast<int>(num("priority").value_or(0));
  if (auto m = num("max_attempts")) d.job.max_attempts = static_cast<int>(*m);
  for (const auto& [key, value] : o) {
    static const std::set<std::string_view> known = {
        "name", "cron", "tz", "every_ms", "handler", "payload", "priority", "max_attempts",
        "missed", "grace_ms", "overlap", "start_ms", "end_ms", "limit", "source",
        // what `forq schedule list --json` adds, so its output can be given back as it is
        "queue", "version", "next_ms", "last_ms", "last_job_id", "runs", "skipped",
        "skipped_missed", "skipped_overlap", "state", "last_late_ms"};
    if (!known.contains(key)) {
      if (strict) return refuse("a schedule has no field \"" + std::string(key) + "\"");
      continue;
    }
    const bool text_field = key == "name" || key == "cron" || key == "tz" || key == "handler" ||
                            key == "missed" || key == "overlap" || key == "source";
    const bool number_field = key == "every_ms" || key == "priority" || key == "max_attempts" ||
                              key == "grace_ms" || key == "start_ms" || key == "end_ms" ||
                              key == "limit";
    if (text_field && !value.is_string())
      return refuse("schedule field \"" + std::string(key) + "\" must be a string");
    if (number_field && !value.is_int64())
      return refuse("schedule field \"" + std::string(key) + "\" must be a whole number");
  }
  auto missed = str("missed").value_or("latest");
  if (auto m = missed_from(missed))
    d.missed = *m;
  else
    return refuse("missed \"" + missed + "\" is not allowed: skip, latest or all");
  auto overlap = str("overlap").value_or("allow");
  if (auto o2 = overlap_from(overlap))
    d.overlap = *o2;
  else
    return refuse("overlap \"" + overlap + "\" is not allowed: allow, skip or queue-one");
  d.grace = milliseconds(num("grace_ms").value_or(60000));
  d.start_ms = num("start_ms");
  d.end_ms = num("end_ms");
  d.limit = num("limit");
  auto source = str("source").value_or("");
  if (!source.empty() && source != "config")
    return refuse("source \"" + source + "\" is not allowed: config, or none");
  d.from_config = source == "config";
  if (auto ok = check(d); !ok) return ok.error();
  return d;
}

expected<std::vector<definition>> from_json_list(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_array()) return refuse("expected a JSON array of schedules");
  std::vector<definition> out;
  std::set<std::pair<std::string, std::string>> seen;
  std::size_t i = 0;
  for (const auto& one : v.as_array()) {
    const auto where = "schedules[" + std::to_string(i++) + "]";
    if (!one.is_object()) return refuse(where + " must be a JSON object");
    std::string queue = "default";
    if (auto* q = one.as_object().if_contains("queue")) {
      if (!q->is_string()) return refuse(where + ": queue must be a string");
      queue = std::string(q->as_string());
    }
    auto d = from_json(json::serialize(one), queue, true);
    if (!d) return refuse(where + ": " + d.error().message());
    d->from_config = true;
    if (!seen.emplace(d->queue, d->name).second)
      return refuse(where + ": queue " + d->queue + " has a schedule \"" + d->name +
                    "\" already; names are unique in a queue");
    out.push_back(std::move(*d));
  }
  return out;
}

expected<> check(const definition& d) {
  if (auto ok = handlers::check_name(d.name); !ok)
    return refuse("schedule " + ok.error().message().substr(std::string("handler ").size()));
  if (auto ok = queue::check_queue_name(d.queue); !ok) return ok.error();
  if (d.cron_text.empty() == (d.every.count() == 0))
    return refuse("schedule \"" + d.name + "\" needs a cron expression or an interval, not " +
                  (d.cron_text.empty() ? "neither" : "both"));
  if (!d.cron_text.empty()) {
    auto c = parse_cron(d.cron_text);
    if (!c) return refuse("schedule \"" + d.name + "\": " + c.error().message());
    if (!d.zone.empty())
      if (auto z = find_zone(d.zone); !z)
        return refuse("schedule \"" + d.name + "\": " + z.error().message());
  } else if (d.every < std::chrono::seconds(1) || d.every.count() > year_ms) {
    return refuse("schedule \"" + d.name + "\": every " + std::to_string(d.every.count()) +
                  " ms is not allowed: use 1s to 366d");
  }
  if (d.job.id) return refuse("a schedule's job takes its id from the schedule and the slot");
  if (auto ok = queue::check_job(d.job); !ok)
    return refuse("schedule \"" + d.name + "\": " + ok.error().message());
  if (d.grace.count() < 0 || d.grace.count() > year_ms)
    return refuse("schedule \"" + d.name + "\": grace must be 0 to 366d");
  if (d.limit && *d.limit < 1)
    return refuse("schedule \"" + d.name + "\": limit " + std::to_string(*d.limit) +
                  " is not allowed: at least 1 run");
  if ((d.start_ms && *d.start_ms < 0) || (d.end_ms && *d.end_ms < 0))
    return refuse("schedule \"" + d.name + "\": start and end are times since 1970");
  if (d.start_ms && d.end_ms && *d.end_ms < *d.start_ms)
    return refuse("schedule \"" + d.name + "\": its end is before its start");
  return {};
}

namespace {

// A definition's slots, its cron expression and zone read once (a keeper catching up on missed
// slots asks for many).
class slot_clock {
 public:
  explicit slot_clock(const definition& d)
      : every_(d.every.count())
      , start_(d.start_ms)
      , end_(d.end_ms) {
    if (every_ > 0) return;
    if (auto c = parse_cron(d.cron_text)) cron_ = std::move(*c);
    if (!d.zone.empty()) {
      auto z = find_zone(d.zone);
      if (z)
        zone_ = *z;
      else
        cron_.reset(); // checked at upsert: only a hand-written definition gets here
    }
  }

  // The first slot strictly after `after_ms`, within the start and the end.
  std::optional<std::int64_t> next(std::int64_t after_ms) const {
    if (start_ && after_ms < *start_) after_ms = *start_ - 1;
    auto s = unbounded(after_ms);
    if (s && end_ && *s > *end_) return std::nullopt;
    return s;
  }

 private:
  std::optional<std::int64_t> unbounded(std::int64_t after_ms) const {
    if (every_ > 0) // aligned to the clock
      return (after_ms >= 0 ? after_ms / every_ + 1 : -((-after_ms) / every_)) * every_;
    if (!cron_) return std::nullopt;
    // Cron slots are whole seconds: strictly after `after_ms` means after its second.
    auto next = next_after(*cron_, sys_seconds(std::chrono::seconds(after_ms / 1000)), zone_);
    if (!next) return std::nullopt;
    return std::chrono::duration_cast<milliseconds>(next->time_since_epoch()).count();
  }

  std::int64_t every_;
  std::optional<std::int64_t> start_, end_;
  std::optional<cron> cron_;
  const date::time_zone* zone_ = nullptr;
};

} // namespace

std::optional<std::int64_t> next_slot(const definition& d, std::int64_t after_ms) {
  return slot_clock(d).next(after_ms);
}

std::string job_id(const definition& d, std::int64_t slot_ms) {
  return "schedule:" + d.name + ":" + std::to_string(slot_ms);
}

boost::asio::awaitable<expected<upserted>> upsert(redis::connection& conn, const definition& d,
                                                  redis::exec_options opts) {
  if (auto ok = check(d); !ok) co_return ok.error();
  auto now = co_await redis_now(conn, opts);
  if (!now) co_return now.error();
  auto first = next_slot(d, *now + look_every.count() - 1);
  schedule_keys k(d.queue);
  const auto text = to_json(d);
  const auto first_text = first ? std::to_string(*first) : std::string();
  const std::vector<std::string_view> keys_v{k.schedules, k.state, k.due},
      args{d.name, text, first_text};
  auto r = co_await redis::eval(conn, queue::detail::scripts().schedule_upsert, keys_v, args, opts);
  if (!r) co_return r.error();
  if (r->is_error()) co_return queue::write_error(*r);
  if (!r->is_array() || r->elements().size() != 2)
    co_return error(errc::redis_protocol, r->to_string());
  // Registered like a queue a producer wrote to, so `forq queues` shows it.
  const redis::request registered("SADD", queue::keys::all_queues, d.queue);
  co_await conn.exec(registered, opts);
  co_return upserted{std::string(r->elements()[0].str()),
                     r->elements()[1].as_integer().value_or(0)};
}

boost::asio::awaitable<expected<bool>> remove(redis::connection& conn, std::string_view queue,
                                              std::string_view name, redis::exec_options opts) {
  if (auto ok = queue::check_queue_name(queue); !ok) co_return ok.error();
  schedule_keys k(queue);
  const std::vector<std::string_view> keys_v{k.schedules, k.state, k.due}, args{name};
  auto r = co_await redis::eval(conn, queue::detail::scripts().schedule_remove, keys_v, args, opts);
  if (!r) co_return error(r.error()); // (not the code alone: a bool would take it)
  if (r->is_error()) co_return queue::write_error(*r);
  co_return r->as_integer().value_or(0) == 1;
}

namespace {

boost::asio::awaitable<expected<bool>> pause_or_resume(redis::connection& conn,
                                                       std::string_view queue,
                                                       std::string_view name, bool pause,
                                                       redis::exec_options opts) {
  if (auto ok = queue::check_queue_name(queue); !ok) co_return ok.error();
  schedule_keys k(queue);
  std::string first;
  if (!pause) {
    const redis::request get("HGET", k.schedules, name);
    auto def = redis::connection::single(co_await conn.exec(get, opts));
    if (!def) co_return error(def.error());
    if (!def->is_string()) co_return false;
    auto d = from_json(def->str(), queue);
    if (!d) co_return d.error();
    auto now = co_await redis_now(conn, opts);
    if (!now) co_return error(now.error());
    if (auto f = next_slot(*d, *now + look_every.count() - 1)) first = std::to_string(*f);
  }
  const std::vector<std::string_view> keys_v{k.schedules, k.state, k.due},
      args{name, pause ? "pause" : "resume", first};
  auto r = co_await redis::eval(conn, queue::detail::scripts().schedule_pause, keys_v, args, opts);
  if (!r) co_return error(r.error());
  if (r->is_error()) co_return queue::write_error(*r);
  co_return r->as_integer().value_or(0) == 1;
}

} // namespace

boost::asio::awaitable<expected<bool>> pause(redis::connection& conn, std::string_view queue,
                                             std::string_view name, redis::exec_options opts) {
  return pause_or_resume(conn, queue, name, true, opts);
}

boost::asio::awaitable<expected<bool>> resume(redis::connection& conn, std::string_view queue,
                                              std::string_view name, redis::exec_options opts) {
  return pause_or_resume(conn, queue, name, false, opts);
}

boost::asio::awaitable<expected<std::optional<std::string>>> run_now(redis::connection& conn,
                                                                     std::string_view queue,
                                                                     std::string_view name,
                                                                     redis::exec_options opts) {
  if (auto ok = queue::check_queue_name(queue); !ok) co_return ok.error();
  schedule_keys k(queue);
  const redis::request get("HGET", k.schedules, name);
  auto def = redis::connection::single(co_await conn.exec(get, opts));
  if (!def) co_return error(def.error());
  if (!def->is_string()) co_return std::nullopt;
  auto d = from_json(def->str(), queue);
  if (!d) co_return d.error();
  auto now = co_await redis_now(conn, opts);
  if (!now) co_return error(now.error());
  auto j = d->job;
  j.id = "schedule:" + d->name + ":now:" + std::to_string(*now);
  client c(conn, opts);
  auto added = co_await c.enqueue(queue, j);
  if (!added) co_return added.error();
  redis::request req;
  req.push("HSET", k.state, d->name + ":last_id", *j.id);
  req.push("HINCRBY", k.state, d->name + ":runs", "1");
  co_await conn.exec(req, opts);
  co_return *j.id;
}

boost::asio::awaitable<expected<std::vector<status>>>
list(redis::connection& conn, std::string_view queue, redis::exec_options opts) {
  if (auto ok = queue::check_queue_name(queue); !ok) co_return ok.error();
  schedule_keys k(queue);
  redis::request req;
  req.push("HGETALL", k.schedules);
  req.push("HGETALL", k.state);
  req.push("ZRANGE", k.due, "0", "-1", "WITHSCORES");
  auto r = co_await conn.exec(req, opts);
  if (!r) co_return r.error();
  for (const auto& one : *r)
    if (one.is_error()) co_return queue::write_error(one);
  std::vector<status> out;
  const auto& defs = (*r)[0].elements();
  const auto& state = (*r)[1].elements();
  const auto& due = (*r)[2].elements();
  auto field = [&](const std::string& name, std::string_view what) -> std::optional<std::string> {
    const auto key = name + ":" + std::string(what);
    for (std::size_t i = 0; i + 1 < state.size(); i += 2)
      if (state[i].str() == key) return std::string(state[i + 1].str());
    return std::nullopt;
  };
  for (std::size_t i = 0; i + 1 < defs.size(); i += 2) {
    auto d = from_json(defs[i + 1].str(), queue);
    status s;
    if (d) {
      s.def = std::move(*d);
    } else { // by hand, by a newer forq, or a zone this host lacks: shown, not hidden
      s.def.name = defs[i].str();
      s.def.queue = queue;
      s.unreadable = d.error().message();
    }
    s.version = to_int(field(s.def.name, "version").value_or("0")).value_or(0);
    s.runs = to_int(field(s.def.name, "runs").value_or("0")).value_or(0);
    s.skipped = to_int(field(s.def.name, "skipped").value_or("0")).value_or(0);
    s.skipped_missed = to_int(field(s.def.name, "skipped:missed").value_or("0")).value_or(0);
    s.skipped_overlap = to_int(field(s.def.name, "skipped:overlap").value_or("0")).value_or(0);
    s.paused = field(s.def.name, "paused").has_value();
    s.held = field(s.def.name, "held").has_value();
    if (auto l = field(s.def.name, "late_ms")) s.last_late_ms = to_int(*l);
    if (auto l = field(s.def.name, "last_slot")) s.last_ms = to_int(*l);
    s.last_id = field(s.def.name, "last_id").value_or("");
    for (std::size_t j = 0; j + 1 < due.size(); j += 2)
      if (due[j].str() == s.def.name) s.next_ms = to_int(due[j + 1].str());
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const status& a, const status& b) { return a.def.name < b.def.name; });
  co_return out;
}

boost::asio::awaitable<expected<>> reconcile(redis::connection& conn,
                                             const std::vector<definition>& defs,
                                             const std::vector<std::string>& queues) {
  std::optional<error> first;
  std::set<std::pair<std::string, std::string>> wanted;
  std::set<std::string> scan(queues.begin(), queues.end());
  for (const auto& d : defs) {
    wanted.emplace(d.queue, d.name);
    scan.insert(d.queue);
    auto u = co_await upsert(conn, d);
    if (!u) {
      if (!first) first = u.error();
      continue;
    }
    if (u->what != "unchanged")
      spdlog::info("schedules: {} {} of queue {} (version {}, from the schedules setting)", u->what,
                   d.name, d.queue, u->version);
  }
  // What the setting added before may sit in any queue it named then.
  if (auto reg = co_await conn.command("SMEMBERS", queue::keys::all_queues); reg && reg->is_array())
    for (const auto& q : reg->elements())
      scan.emplace(q.str());
  for (const auto& q : scan) {
    auto all = co_await list(conn, q);
    if (!all) {
      if (!first && all.error() != errc::invalid_value) first = all.error();
      continue;
    }
    for (const auto& s : *all) {
      if (!s.def.from_config || wanted.contains({q, s.def.name})) continue;
      auto removed = co_await remove(conn, q, s.def.name);
      if (!removed) {
        if (!first) first = removed.error();
      } else if (*removed) {
        spdlog::info("schedules: removed {} of queue {} (no longer in the schedules setting)",
                     s.def.name, q);
      }
    }
  }
  if (first) co_return *first;
  co_return expected<>();
}

namespace {

// One claim: the schedule at `expected_slot` (and `version`) moves to `next`, running or
// skipping `slot`. Completes with the script's word, or an error.
boost::asio::awaitable<expected<std::string>>
claim(redis::connection& conn, const definition& d, std::string_view version,
      std::int64_t expected_slot, std::int64_t slot, std::optional<std::int64_t> next, bool run,
      std::size_t passed, std::string_view reason, std::int64_t now) {
  schedule_keys k(d.queue);
  const auto id = job_id(d, slot);
  const auto stream = queue::keys::stream_key(d.queue, d.job.priority);
  const auto marker = queue::keys::unique_key(d.queue, id);
  const auto expected_text = std::to_string(expected_slot), slot_text = std::to_string(slot);
  const auto next_text = next ? std::to_string(*next) : std::string();
  const auto passed_text = std::to_string(passed);
  const auto ttl = marker_ttl(slot, next);
  const auto limit_text = d.limit ? std::to_string(*d.limit) : std::string();
  const auto late_text = std::to_string(std::max<std::int64_t>(0, now - slot));
  std::string storage;
  auto fields = queue::job_fields(d.job, storage);
  std::vector<std::string_view> keys_v, args;
  keys_v.push_back(k.due);
  keys_v.push_back(k.state);
  keys_v.push_back(stream);
  keys_v.push_back(marker);
  args.push_back(d.name);
  args.push_back(expected_text);
  args.push_back(version);
  args.push_back(slot_text);
  args.push_back(next_text);
  args.push_back(run ? "run" : "skip");
  args.push_back(passed_text);
  args.push_back(id);
  args.push_back(ttl);
  args.push_back(reason);
  args.push_back(limit_text);
  args.push_back(late_text);
  args.insert(args.end(), fields.begin(), fields.end());
  auto r = co_await redis::eval(conn, queue::detail::scripts().schedule_claim, keys_v, args);
  if (!r) co_return r.error();
  if (r->is_error()) co_return queue::write_error(*r);
  co_return std::string(r->str());
}

// The slots of `d` that came due from `first` to `now`, oldest first (at most most_missed + 1),
// and the first slot after `now`.
struct due_slots {
  std::vector<std::int64_t> slots;
  std::size_t dropped = 0; // slots between the first and the rest, beyond most_missed
  std::optional<std::int64_t> next;
};

due_slots slots_due(const definition& d, std::int64_t first, std::int64_t now) {
  due_slots out;
  out.slots.push_back(first);
  const slot_clock clock(d);
  auto s = clock.next(first);
  while (s && *s <= now) {
    out.slots.push_back(*s);
    if (out.slots.size() > most_missed + 1) {
      out.slots.erase(out.slots.begin() + 1);
      ++out.dropped;
    }
    s = clock.next(*s);
  }
  out.next = s;
  return out;
}

// Whether the schedule's previous run (`last_id`) is still to start ("waiting": ready or delayed),
// running ("running"), or neither (""), for its overlap policy.
boost::asio::awaitable<expected<std::string>>
previous_run(redis::connection& conn, std::string_view queue, const std::string& last_id) {
  if (last_id.empty()) co_return std::string();
  client c(conn);
  auto j = co_await c.get_job(queue, last_id);
  if (!j) co_return j.error();
  if (!*j) co_return std::string();
  const auto& state = (*j)->state;
  if (state == "active") co_return std::string("running");
  if (state == "ready" || state == "delayed") co_return std::string("waiting");
  co_return std::string();
}

struct step {
  std::int64_t slot;
  bool run;
  std::size_t passed; // slots before `slot` it passes over
};

// Runs one schedule whose slot `at` is due at `now`, as its overlap and missed-run policies say.
// False when nothing moved: Redis could not be asked, or the slot waits for the previous run
// (overlap = queue-one); it stays due, for a later look.
boost::asio::awaitable<bool> run_due(redis::connection& conn, std::string_view queue,
                                     const std::string& name, std::int64_t at, std::int64_t now) {
  schedule_keys k(queue);
  redis::request req;
  req.push("HGET", k.schedules, name);
  req.push("HMGET", k.state, name + ":version", name + ":last_id", name + ":held");
  auto r = co_await conn.exec(req);
  if (!r) co_return false;
  const auto& st = (*r)[1];
  if (!(*r)[0].is_string() || !st.is_array() || st.elements().size() != 3 ||
      !st.elements()[0].is_string())
    co_return true; // removed meanwhile
  auto d = from_json((*r)[0].str(), queue);
  if (!d) {
    // Written by hand, by a newer forq, or naming a zone this host's tzdata lacks: said once by
    // this process, and looked at again in a minute (by any host: one that can read it runs
    // it), so it is neither a loop nor a schedule stopped everywhere by one host.
    static std::set<std::string> said;
    if (said.insert(std::string(queue) + "\n" + name).second)
      spdlog::error("queue {}: schedule {} cannot be read here ({}); its slots wait for a host "
                    "that can (looked at again every minute); forq schedule list shows it "
                    "unreadable",
                    queue, name, d.error().message());
    redis::request later("ZADD", k.due, "XX", std::to_string(now + 60000), name);
    co_await conn.exec(later);
    co_return true;
  }
  const std::string version(st.elements()[0].str());
  const std::string last_id(st.elements()[1].is_string() ? st.elements()[1].str() : "");
  const bool held = st.elements()[2].is_string();
  auto due = slots_due(*d, at, now);
  const auto latest = due.slots.back();
  const auto before_latest = due.slots.size() - 1 + due.dropped;
  std::vector<step> plan;
  std::string_view reason = "missed";
  std::string previous;
  if (d->overlap != overlap_policy::allow) {
    auto p = co_await previous_run(conn, queue, last_id);
    if (!p) {
      spdlog::warn("queue {}: schedule {}: its previous run {} could not be looked up ({}); "
                   "trying again at the next look",
                   queue, name, last_id, p.error().message());
      co_return false;
    }
    previous = *p;
  }
  if (previous == "running" && d->overlap == overlap_policy::queue_one) {
    // Waits for it (looked at again within a second); said once.
    if (!held) {
      spdlog::info("queue {}: schedule {}: the slot at {} ms waits for the previous run {} to "
                   "finish (overlap = queue-one)",
                   queue, name, at, last_id);
      redis::request hold("HSET", k.state, name + ":held", std::to_string(at));
      co_await conn.exec(hold);
    }
    co_return false;
  }
  if (!previous.empty()) { // skip, or queue-one with a run already waiting to start
    reason = "overlap";
    plan.push_back(step{latest, false, before_latest});
  } else if (held) { // queue-one: the previous run finished; the one that waited runs now
    reason = "overlap";
    plan.push_back(step{latest, true, before_latest});
  } else {
    // Catching up with missed = all runs the slots one after another at once: with an overlap
    // policy that is the overlap it forbids, so only the latest runs.
    const auto missed = d->missed == missed_policy::all && d->overlap != overlap_policy::allow
                            ? missed_policy::latest
                            : d->missed;
    switch (missed) {
    case missed_policy::all:
      for (auto s : due.slots)
        plan.push_back(step{s, true, 0});
      // At most most_missed run: the oldest due slot (and any dropped) skipped beyond that.
      if (due.slots.size() > most_missed) plan.front() = step{at, false, due.dropped};
      break;
    case missed_policy::latest:
      plan.push_back(step{latest, now - latest <= d->grace.count(), before_latest});
      break;
    case missed_policy::skip:
      plan.push_back(step{latest, now - latest <= 1000, before_latest});
      break;
    }
  }
  std::int64_t expected_slot = at;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const auto [slot, run, passed] = plan[i];
    const auto next = i + 1 < plan.size() ? std::optional(plan[i + 1].slot) : due.next;
    auto said =
        co_await claim(conn, *d, version, expected_slot, slot, next, run, passed, reason, now);
    if (!said) {
      spdlog::warn("queue {}: schedule {}: the slot at {} ms could not be claimed ({}); trying "
                   "again at the next look",
                   queue, name, slot, said.error().message());
      co_return false;
    }
    if (*said == "moved" || *said == "changed") co_return true; // another keeper was first
    if (*said == "ended") {
      spdlog::info("queue {}: schedule {} ended: {} runs (its limit)", queue, name,
                   d->limit.value_or(0));
      co_return true;
    }
    const auto count = passed + (*said == "skipped" ? 1 : 0);
    if (count > 0 && reason == "overlap")
      spdlog::info("queue {}: schedule {}: {} slot{} skipped: the previous run {} is still {} "
                   "(overlap = {})",
                   queue, name, count, count == 1 ? "" : "s", last_id,
                   previous.empty() ? "was running" : previous, to_string(d->overlap));
    else if (count > 0)
      spdlog::warn("queue {}: schedule {}: {} slot{} missed (the latest {} ms ago); {} (missed = "
                   "{})",
                   queue, name, count, count == 1 ? "" : "s", now - slot,
                   *said == "ran" ? "ran the latest" : "none runs", to_string(d->missed));
    if (next) expected_slot = *next;
  }
  co_return true;
}

} // namespace

boost::asio::awaitable<milliseconds> tick(redis::connection& conn, std::string_view queue,
                                          milliseconds longest) {
  schedule_keys k(queue);
  redis::request head("ZRANGE", k.due, "0", "0", "WITHSCORES");
  auto h = redis::connection::single(co_await conn.exec(head));
  if (!h || !h->is_array() || h->elements().size() != 2) co_return longest; // none, or Redis away
  auto now = co_await redis_now(conn);
  if (!now) co_return longest;
  auto first = to_int(h->elements()[1].str());
  if (!first) co_return longest;
  if (*first > *now) co_return std::min(longest, milliseconds(*first - *now));
  redis::request due("ZRANGE", k.due, "-inf", std::to_string(*now), "BYSCORE", "WITHSCORES",
                     "LIMIT", "0", "100");
  auto all = redis::connection::single(co_await conn.exec(due));
  if (!all || !all->is_array()) co_return longest;
  const auto& e = all->elements();
  bool progressed = false;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2)
    if (auto at = to_int(e[i + 1].str())) {
      const std::string name(e[i].str());
      const bool moved = co_await run_due(conn, queue, name, *at, *now);
      progressed = progressed || moved;
    }
  // Look again at once (what came due meanwhile, the next slot), unless nothing could be done
  // (Redis refused, or a slot waits for its previous run): then in a second, not in a loop, or
  // at the next slot of another schedule if that is sooner.
  if (progressed) co_return milliseconds(0);
  auto wait = std::min(longest, milliseconds(1000));
  redis::request later("ZRANGE", k.due, "(" + std::to_string(*now), "+inf", "BYSCORE", "WITHSCORES",
                       "LIMIT", "0", "1");
  auto soon = redis::connection::single(co_await conn.exec(later));
  if (soon && soon->is_array() && soon->elements().size() == 2)
    if (auto at = to_int(soon->elements()[1].str()))
      wait = std::min(wait, milliseconds(std::max<std::int64_t>(0, *at - *now)));
  co_return wait;
}

} // namespace forq::schedule
