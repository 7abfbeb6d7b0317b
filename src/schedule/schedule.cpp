// Schedules in Redis (docs/schedules.md): Redis's clock, add or change, remove, pause, resume,
// run now, list, and the `schedules` setting's reconciliation. The keeper's look is keeper.cpp.
#include "schedule/schedule.hpp"

#include "forq/client.hpp"
#include "queue/protocol.hpp"
#include "queue/scripts.hpp"
#include "redis/script.hpp"
#include "schedule/detail.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace forq::schedule {
using detail::schedule_keys;
using detail::to_int;
namespace {

namespace json = boost::json;

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

} // namespace forq::schedule
