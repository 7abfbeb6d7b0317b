#include "forq/client.hpp"

#include "forq/error.hpp"
#include "queue/client_detail.hpp"
#include "queue/history.hpp"
#include "queue/job.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace forq {

using namespace client_detail; // json, error_code, result<T>, and how a job's forms are read

json::object job_info::to_json() const {
  json::object o;
  o["queue"] = queue;
  o["id"] = id;
  o["state"] = state;
  if (!handler.empty()) o["handler"] = handler;
  if (!payload.empty()) {
    error_code ec;
    auto p = json::parse(payload, ec);
    o["payload"] = ec ? json::value(payload) : p;
  }
  o["attempts"] = attempts;
  if (priority) o["priority"] = *priority;
  if (max_attempts) o["max_attempts"] = *max_attempts;
  if (retry) o["retry"] = *retry;
  if (result) {
    error_code ec;
    auto r = json::parse(*result, ec);
    o["result"] = ec ? json::value(*result) : r;
  }
  if (last_error) o["last_error"] = *last_error;
  if (reason) o["reason"] = *reason;
  if (errors) o["errors"] = *errors;
  if (run_at_ms) o["run_at_ms"] = *run_at_ms;
  if (finished_ms) o["finished_ms"] = *finished_ms;
  if (queued_ms) o["queued_ms"] = *queued_ms;
  if (consumer) o["consumer"] = *consumer;
  if (lease_idle_ms) o["lease_idle_ms"] = *lease_idle_ms;
  if (waitable) o["waitable"] = true;
  if (cancel_requested) o["cancel_requested"] = true;
  if (cancelled_by) o["cancelled_by"] = *cancelled_by;
  if (cancel_reason) o["cancel_reason"] = *cancel_reason;
  if (progress) {
    error_code ec;
    auto v = json::parse(*progress, ec);
    o["progress"] = ec ? json::value(*progress) : v;
  }
  if (!other_fields.empty()) {
    json::object extra;
    for (const auto& [k, v] : other_fields)
      extra[k] = v;
    o["fields"] = std::move(extra);
  }
  return o;
}

json::object minute_figures::to_json() const {
  json::object o;
  o["at_ms"] = at_ms;
  o["done"] = done;
  o["failed"] = failed;
  o["started"] = started;
  o["pickup_p50_ms"] = pickup_p50_ms ? json::value(*pickup_p50_ms) : json::value(nullptr);
  o["pickup_p99_ms"] = pickup_p99_ms ? json::value(*pickup_p99_ms) : json::value(nullptr);
  return o;
}

json::object queue_stats::to_json() const {
  json::object o;
  o["queue"] = queue;
  o["ready"] = ready;
  o["delayed"] = delayed;
  o["active"] = active;
  o["dead"] = dead;
  o["cancelled"] = cancelled;
  o["completed"] = completed;
  o["retried"] = retried;
  o["stalled"] = stalled;
  o["died"] = died;
  o["cancels"] = cancels;
  o["paused"] = paused;
  o["schedules"] = schedules;
  o["events"] = events_max; // 0: off
  if (!minutes.empty()) {
    json::array m;
    for (const auto& x : minutes)
      m.push_back(x.to_json());
    o["minutes"] = std::move(m);
  }
  if (rate_max > 0) {
    json::object limit;
    limit["max"] = rate_max;
    limit["per_ms"] = rate_ms;
    o["rate_limit"] = limit;
  }
  return o;
}

boost::asio::awaitable<result<queue::enqueue_result>> client::enqueue(std::string_view queue,
                                                                      const queue::new_job& j) {
  auto r = co_await queue::enqueue(conn_, queue, j, opts_);
  // The registry (for `forq queues`) once per client and queue, not a round trip per job.
  if (r && registered_.insert(std::string(queue)).second) {
    redis::request reg("SADD", queue::keys::all_queues, queue);
    if (!co_await exec(reg)) registered_.erase(std::string(queue));
  }
  co_return r;
}

boost::asio::awaitable<result<std::vector<enqueue_outcome>>>
client::enqueue_many(std::string_view queue, const std::vector<queue::new_job>& jobs) {
  std::vector<enqueue_outcome> out(jobs.size());
  if (auto ok = queue::check_queue_name(queue); !ok) {
    for (auto& o : out)
      o.refused = ok.error().message();
    co_return out;
  }
  redis::request reg("SADD", queue::keys::all_queues, queue);
  if (auto r = co_await exec(reg); !r) co_return r.error();
  auto known = queue::events_known(conn_, queue);
  if (!known) known = co_await queue::events_on(conn_, queue, opts_); // (no co_await in a ?:)
  const bool events = *known;
  std::size_t i = 0;
  while (i < jobs.size()) {
    // A run of plain jobs: one pipelined request of XADDs.
    std::vector<std::size_t> in_batch;
    for (; i < jobs.size() && in_batch.size() < 1000; ++i) {
      const auto& j = jobs[i];
      if (auto ok = queue::check_job(j); !ok) {
        out[i].refused = ok.error().message();
        continue;
      }
      if (j.id || (j.run_at_ms && *j.run_at_ms > queue::epoch_ms())) break;
      in_batch.push_back(i);
    }
    // While events are on, each is an EVALSHA of added.lua (with its `added` event); those a
    // Redis without the script refused (-NOSCRIPT: nothing done) go again after a SCRIPT LOAD.
    for (int pass = 0; pass < 2 && !in_batch.empty(); ++pass) {
      redis::request batch;
      if (pass == 1) batch.push("SCRIPT", "LOAD", queue::detail::scripts().added.source());
      const std::size_t first = batch.commands();
      for (auto k : in_batch)
        if (events)
          queue::push_added(batch, queue, jobs[k]);
        else
          queue::push_xadd(batch, queue, jobs[k]);
      const auto& d = conn_.options().durability;
      if (d.replicas > 0) queue::push_wait(batch, d);
      auto o = opts_;
      o.extra_timeout = d.replicas > 0 ? d.timeout : std::chrono::milliseconds(0);
      auto r = co_await conn_.exec(batch, o);
      if (!r) co_return r.error();
      std::optional<std::string> unconfirmed;
      if (d.replicas > 0) unconfirmed = queue::short_of_replicas(r->back(), d, "the job is");
      std::vector<std::size_t> again;
      for (std::size_t k = 0; k < in_batch.size(); ++k) {
        const auto& reply = (*r)[first + k];
        auto& o_k = out[in_batch[k]];
        if (reply.is_noscript() && pass == 0)
          again.push_back(in_batch[k]);
        else if (reply.is_error())
          o_k.refused = std::string(reply.str());
        else
          o_k.added = queue::enqueue_result{
              queue::first_attempt_id(reply.str(), jobs[in_batch[k]].priority), false};
        if (unconfirmed && o_k.added) o_k.unconfirmed = *unconfirmed;
      }
      in_batch = std::move(again);
    }
    // One that needs a script (caller-given id, or later).
    if (i < jobs.size() && out[i].refused.empty() && !out[i].added) {
      auto r = co_await queue::enqueue(conn_, queue, jobs[i], opts_);
      if (r)
        out[i].added = *r;
      else if (r.error() == errc::redis_not_confirmed) // added; its id is in the words
        out[i].unconfirmed = r.error().message();
      else if (r.error() == errc::invalid_job)
        out[i].refused = r.error().message();
      else
        co_return r.error();
      ++i;
    }
  }
  co_return out;
}

boost::asio::awaitable<result<queue_stats>> client::stats(std::string_view queue) {
  const std::vector<std::string> one{std::string(queue)};
  auto all = co_await stats_many(one);
  if (!all) co_return all.error();
  co_return std::move(all->front());
}

namespace {

// A queue's counts from its keys (client::stats_many): first which of its ten priority streams
// hold entries and the cheap counts, then the groups of those streams.
struct stats_reading {
  queue::keys k;
  queue_stats s;
  std::vector<int> streams;          // the priorities whose stream holds entries
  std::vector<std::int64_t> lengths; // and their lengths
  std::size_t first = 0;             // this queue's first reply in the pipeline
  explicit stats_reading(std::string_view queue)
      : k(queue) {
    s.queue = queue;
  }
};

constexpr std::size_t stats_batch = 100; // queues per round trip

// One stream's share of ready and active, from its XINFO GROUPS. Answers false when the stream
// has no group of forq's (no consumer has started on it): then all its entries are ready, which
// its length tells.
boost::asio::awaitable<result<bool>>
add_stream_counts(redis::connection& conn, redis::exec_options opts, queue_stats& s,
                  const queue::keys& k, int p, const redis::reply& info, std::int64_t length) {
  bool grouped = false;
  if (info.is_array())
    for (const auto& g : info.elements()) {
      const auto& kv = g.elements();
      std::string name;
      std::optional<std::int64_t> lag, read;
      std::int64_t pending = 0;
      for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
        auto key = kv[i].str();
        if (key == "name") name = kv[i + 1].str();
        if (key == "pending") pending = kv[i + 1].as_integer().value_or(0);
        if (key == "lag" && kv[i + 1].as_integer()) lag = *kv[i + 1].as_integer();
        if (key == "entries-read" && kv[i + 1].as_integer()) read = *kv[i + 1].as_integer();
      }
      if (name != group) continue;
      grouped = true;
      s.active += pending;
      if (!lag && read) {
        // Unknown after an XDEL ahead of the group (a cancelled ready job: cancel.lua counts
        // it out of entries-added): entries added minus entries read, from the stream's header.
        redis::request c("XINFO", "STREAM", k.stream_for(p));
        auto cr = redis::connection::single(co_await conn.exec(c, opts));
        if (!cr) co_return error(cr.error());
        if (cr->is_array())
          for (std::size_t i = 0; i + 1 < cr->elements().size(); i += 2)
            if (cr->elements()[i].str() == "entries-added")
              if (auto added = cr->elements()[i + 1].as_integer()) lag = *added - *read;
      }
      // Still unknown (the group's reads are not counted): what the stream holds beyond the
      // leases, an estimate (acknowledged entries not trimmed yet count too).
      if (!lag) lag = length - pending;
      s.ready += std::max<std::int64_t>(0, *lag);
    }
  co_return grouped;
}

} // namespace

boost::asio::awaitable<result<std::vector<queue_stats>>>
client::stats_many(const std::vector<std::string>& queues, int minutes) {
  for (const auto& q : queues)
    if (auto name = queue::check_queue_name(q); !name) co_return name.error();
  std::vector<queue_stats> out;
  out.reserve(queues.size());
  for (std::size_t from = 0; from < queues.size(); from += stats_batch) {
    std::vector<stats_reading> batch;
    for (std::size_t i = from; i < std::min(queues.size(), from + stats_batch); ++i)
      batch.emplace_back(queues[i]);
    // Phase 1, one round trip for the batch: 15 commands a queue, each of one key.
    redis::request req;
    for (auto& b : batch) {
      b.first = req.commands();
      for (int p = 0; p <= 9; ++p)
        req.push("XLEN", b.k.stream_for(p));                                  // 0..9
      req.push("ZCARD", b.k.delayed);                                         // 10
      req.push("ZCARD", b.k.dead);                                            // 11
      req.push("HGETALL", b.k.stats);                                         // 12
      req.push("HMGET", b.k.meta, "paused", "rate_max", "rate_ms", "events"); // 13
      req.push("HLEN", queue::keys(b.s.queue).schedules);                     // 14
      req.push("ZCARD", b.k.cancelled);                                       // 15
      if (minutes > 0) req.push("HGETALL", b.k.minutes);                      // 16
    }
    auto r = co_await exec(req);
    if (!r) co_return r.error();
    redis::request groups;
    for (auto& b : batch) {
      const auto& at = *r;
      const auto f = b.first;
      for (int p = 0; p <= 9; ++p) {
        const auto length = at[f + static_cast<std::size_t>(p)].as_integer().value_or(0);
        if (length <= 0) continue; // no entry: nothing ready, nothing leased
        b.streams.push_back(p);
        b.lengths.push_back(length);
      }
      b.s.delayed = at[f + 10].as_integer().value_or(0);
      b.s.dead = at[f + 11].as_integer().value_or(0);
      const auto& kv = at[f + 12].elements();
      for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
        auto key = kv[i].str();
        auto v = to_int(kv[i + 1].str());
        if (key == "completed") b.s.completed = v;
        if (key == "retried") b.s.retried = v;
        if (key == "stalled") b.s.stalled = v;
        if (key == "dead") b.s.died = v;
        if (key == "cancelled") b.s.cancels = v;
      }
      if (at[f + 13].is_array() && at[f + 13].elements().size() == 4) {
        const auto& m = at[f + 13].elements();
        b.s.paused = m[0].str() == "1";
        b.s.rate_max = m[1].as_integer().value_or(0);
        b.s.rate_ms = m[2].as_integer().value_or(0);
        b.s.events_max = std::max<std::int64_t>(0, m[3].as_integer().value_or(0));
      }
      b.s.schedules = at[f + 14].as_integer().value_or(0);
      b.s.cancelled = at[f + 15].as_integer().value_or(0);
      if (minutes > 0)
        b.s.minutes =
            queue::history::read(at[f + 16], queue::history::minute_of(queue::epoch_ms()), minutes);
      b.first = groups.commands();
      for (int p : b.streams)
        groups.push("XINFO", "GROUPS", b.k.stream_for(p));
    }
    // Phase 2, one round trip: the groups of the streams that hold entries (a started queue has
    // all ten streams, most of them empty at any time, which phase 1 already told).
    if (!groups.empty()) {
      auto g = co_await exec(groups);
      if (!g) co_return g.error();
      for (auto& b : batch)
        for (std::size_t j = 0; j < b.streams.size(); ++j) {
          auto grouped = co_await add_stream_counts(conn_, opts_, b.s, b.k, b.streams[j],
                                                    (*g)[b.first + j], b.lengths[j]);
          if (!grouped) co_return grouped.error();
          if (!*grouped) b.s.ready += b.lengths[j]; // no consumer started: every entry is ready
        }
    }
    for (auto& b : batch)
      out.push_back(std::move(b.s));
  }
  co_return out;
}

boost::asio::awaitable<result<std::vector<std::string>>> client::queues() {
  redis::request req("SMEMBERS", queue::keys::all_queues);
  auto r = redis::connection::single(co_await exec(req));
  if (!r) co_return r.error();
  std::vector<std::string> names;
  for (const auto& e : r->elements())
    names.emplace_back(e.str());
  std::sort(names.begin(), names.end());
  co_return names;
}

boost::asio::awaitable<result<bool>> client::known(std::string_view queue) {
  redis::request req("SISMEMBER", queue::keys::all_queues, queue);
  auto r = redis::connection::single(co_await exec(req));
  if (!r) co_return error(r.error());
  co_return r->as_integer().value_or(0) == 1;
}

boost::asio::awaitable<result<bool>> client::has_workers(std::string_view queue) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  redis::request req("HEXISTS", queue::keys(queue).meta, "schema");
  auto r = redis::connection::single(co_await exec(req));
  if (!r) co_return error(r.error());
  co_return r->as_integer().value_or(0) == 1;
}

boost::asio::awaitable<result<std::vector<json::object>>> client::workers() {
  redis::request req("ZRANGE", queue::keys::workers, "0", "-1");
  auto names = redis::connection::single(co_await exec(req));
  if (!names) co_return error(names.error());
  std::vector<json::object> out;
  if (!names->is_array() || names->elements().empty()) co_return out;
  redis::request get; // one key a command: on a cluster each goes to its own primary
  for (const auto& n : names->elements())
    get.push("GET", queue::keys::worker(n.str()));
  auto r = co_await exec(get);
  if (!r) co_return r.error();
  for (const auto& d : *r) {
    if (!d.is_string()) continue; // its description expired: gone
    auto o = parse_object(d.str());
    if (!o.empty()) out.push_back(std::move(o));
  }
  std::sort(out.begin(), out.end(), [](const json::object& a, const json::object& b) {
    auto name = [](const json::object& o) {
      const auto* v = o.if_contains("name");
      return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view();
    };
    return name(a) < name(b);
  });
  co_return out;
}

boost::asio::awaitable<result<std::size_t>>
client::dead_op(std::string_view queue, std::string_view op, const std::vector<std::string>& ids) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  queue::keys k(queue);
  std::vector<std::string> key_storage;
  key_storage.push_back(k.dead);
  key_storage.push_back(k.dead_jobs);
  for (auto& s : k.streams())
    key_storage.push_back(std::move(s));
  key_storage.push_back(k.entries);
  std::vector<std::string_view> keys_v(key_storage.begin(), key_storage.end());
  std::size_t handled = 0;
  std::size_t next = 0;
  // "All" means the jobs dead when the call began: those dying meanwhile are not taken again.
  const auto before = std::to_string(queue::epoch_ms() + 1);
  std::size_t offset = 0; // "all": jobs left in place (unreadable) are skipped
  do {
    std::vector<std::string_view> args;
    args.push_back(op);
    std::string offset_text = std::to_string(offset);
    if (ids.empty()) {
      args.push_back("before");
      args.push_back(before);
      args.push_back(offset_text);
    } else {
      args.push_back("ids");
      for (std::size_t n = 0; n < 1000 && next < ids.size(); ++n)
        args.push_back(ids[next++]);
    }
    auto r = co_await redis::eval(conn_, queue::detail::scripts().dead, keys_v, args, opts_);
    if (!r) co_return r.error();
    if (r->is_error()) co_return queue::write_error(*r);
    if (r->elements().size() != 2) co_return error_code(errc::redis_protocol);
    auto done = static_cast<std::size_t>(r->elements()[0].as_integer().value_or(0));
    auto looked = static_cast<std::size_t>(r->elements()[1].as_integer().value_or(0));
    handled += done;
    if (ids.empty()) {
      offset += looked - done;
      if (looked < 1000) break;
    }
  } while (next < ids.size() || ids.empty());
  co_return handled;
}

boost::asio::awaitable<result<std::size_t>>
client::retry_dead(std::string_view queue, const std::vector<std::string>& ids) {
  return dead_op(queue, "retry", ids);
}

boost::asio::awaitable<result<std::size_t>>
client::purge_dead(std::string_view queue, const std::vector<std::string>& ids) {
  return dead_op(queue, "purge", ids);
}

boost::asio::awaitable<expected<>> client::change_meta(std::string_view queue, redis::request req) {
  // The doorbell: paused consumers wait for it, so a resume takes effect at once.
  req.push("XADD", queue::keys(queue).wake, "MAXLEN", "~", "1000", "*", "meta", "changed");
  req.push("SADD", queue::keys::all_queues, queue); // operators see the queue in `forq queues`
  auto r = co_await exec(req);
  if (!r) co_return r.error();
  for (const auto& one : *r)
    if (one.is_error()) co_return queue::write_error(one);
  co_return expected<>();
}

boost::asio::awaitable<expected<>> client::set_paused(std::string_view queue,
                                                      std::string_view value) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  queue::keys k(queue);
  co_return co_await change_meta(queue, redis::request("HSET", k.meta, "paused", value));
}

boost::asio::awaitable<expected<>>
client::set_rate_limit(std::string_view queue,
                       std::optional<std::pair<std::int64_t, std::chrono::milliseconds>> limit) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  if (limit) {
    if (auto ok = queue::check_bounds(queue::rate_max_bounds, limit->first); !ok)
      co_return error(errc::invalid_value, "rate limit " + ok.error().message());
    if (auto ok = queue::check_bounds(queue::rate_interval_bounds, limit->second.count()); !ok)
      co_return error(errc::invalid_value, "rate interval " + ok.error().message());
  }
  queue::keys k(queue);
  redis::request req;
  if (limit)
    req.push("HSET", k.meta, "rate_max", std::to_string(limit->first), "rate_ms",
             std::to_string(limit->second.count()));
  else
    req.push("HDEL", k.meta, "rate_max", "rate_ms");
  co_return co_await change_meta(queue, std::move(req));
}

boost::asio::awaitable<expected<>> client::pause(std::string_view queue) {
  return set_paused(queue, "1");
}

boost::asio::awaitable<expected<>> client::resume(std::string_view queue) {
  return set_paused(queue, "0");
}

} // namespace forq
