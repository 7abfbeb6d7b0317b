// forq::client's reading of jobs (forq/client.hpp): a job by its id in one queue or in every
// queue, a queue's jobs by state, the dead set, and search by text. Every read is bounded by the
// page asked for or by the id, never by the queue's backlog (docs/http.md).
#include "forq/client.hpp"
#include "forq/error.hpp"
#include "queue/client_detail.hpp"
#include "queue/history.hpp"
#include "queue/job.hpp"
#include "queue/job_lookup.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace forq {

using namespace client_detail; // json, error_code, result<T>, and how a job's forms are read

boost::asio::awaitable<result<std::optional<job_info>>> client::get_job(std::string_view queue,
                                                                        std::string_view id) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  job_lookup lookup(conn_, opts_, queue, id);
  co_return co_await lookup.run();
}

boost::asio::awaitable<result<std::optional<job_info>>> client::find_job(std::string_view id) {
  auto all = co_await queues();
  if (!all) co_return all.error();
  std::vector<std::string> names;
  for (auto& n : *all)
    if (queue::check_queue_name(n)) names.push_back(std::move(n)); // not forq's: never a job's
  constexpr std::size_t per_trip = 100;
  for (std::size_t from = 0; from < names.size(); from += per_trip) {
    const auto to = std::min(names.size(), from + per_trip);
    redis::request req;
    for (auto i = from; i < to; ++i)
      job_lookup::push_first(req, queue::keys(names[i]), names[i], id);
    auto r = co_await exec(req);
    if (!r) co_return r.error();
    for (auto i = from; i < to; ++i) {
      const auto at = (i - from) * job_lookup::first_reads;
      if (!job_lookup::maybe_here(*r, at, id)) continue;
      job_lookup lookup(conn_, opts_, names[i], id);
      auto found = co_await lookup.run();
      if (!found || *found) co_return found;
    }
  }
  co_return std::optional<job_info>();
}

boost::asio::awaitable<result<std::string>>
client::set_progress(std::string_view queue, std::string_view id, std::string_view json) {
  if (auto ok = queue::check_progress(json); !ok) co_return ok.error();
  job_lookup lookup(conn_, opts_, queue, id);
  auto found = co_await lookup.run();
  if (!found) co_return found.error();
  if (!*found) co_return std::string();
  if ((*found)->state != "active") co_return (*found)->state;
  queue::keys k(queue);
  std::vector<std::string_view> keys_v{k.progress, lookup.stream(), k.meta, k.events};
  std::vector<std::string_view> args{group, lookup.entry(), id, json};
  auto r = co_await redis::eval(conn_, queue::detail::scripts().progress, keys_v, args, opts_);
  if (!r) co_return r.error();
  if (r->is_error()) co_return queue::write_error(*r);
  // 0: the attempt ended between the lookup and the write: it is no longer running.
  co_return std::string(r->as_integer().value_or(0) == 1 ? "active" : "finished");
}

boost::asio::awaitable<result<std::vector<job_info>>> client::dead(std::string_view queue,
                                                                   std::size_t limit) {
  return list_jobs(queue, "dead", 0, limit);
}

boost::asio::awaitable<result<std::vector<job_info>>> client::list_jobs(std::string_view queue,
                                                                        std::string_view state,
                                                                        std::size_t offset,
                                                                        std::size_t limit) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  if (state == "ready" || state == "active")
    co_return co_await list_in_streams(queue, state, offset, limit);
  if (state != "dead" && state != "delayed" && state != "completed" && state != "cancelled")
    co_return error(
        errc::invalid_value,
        "state \"" + std::string(state) +
            "\" cannot be listed: ready, active, delayed, dead, cancelled or completed");
  queue::keys k(queue);
  std::vector<job_info> out;
  if (limit == 0) co_return out;
  const bool completed = state == "completed";
  const bool cancelled = state == "cancelled";
  const auto& records_key = state == "dead" ? k.dead_jobs
                            : completed     ? k.results_data
                            : cancelled     ? k.cancelled_jobs
                                            : k.delayed_jobs;
  result<redis::reply> r = error(errc::redis_refused, "");
  if (completed) { // the index holds batch headers among the ids: results.lua walks it
    const auto from = std::to_string(offset), count = std::to_string(limit);
    const std::vector<std::string_view> keys{k.results}, args{"page", from, count};
    r = co_await redis::eval(conn_, queue::detail::scripts().results, keys, args, opts_);
    if (r && r->is_error()) co_return error(errc::redis_refused, std::string(r->str()));
  } else if (cancelled) { // newest first
    redis::request req("ZRANGE", k.cancelled, std::to_string(offset),
                       std::to_string(offset + limit - 1), "REV", "WITHSCORES");
    r = redis::connection::single(co_await exec(req));
  } else {
    redis::request req("ZRANGE", state == "dead" ? k.dead : k.delayed, std::to_string(offset),
                       std::to_string(offset + limit - 1), "WITHSCORES");
    r = redis::connection::single(co_await exec(req));
  }
  if (!r) co_return r.error();
  if (!r->is_array()) co_return out;
  const auto& e = r->elements();
  if (e.empty()) co_return out;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2) { // id, then its time
    job_info j;
    j.queue = queue;
    j.id = e[i].str();
    j.state = std::string(state);
    (state == "delayed" ? j.run_at_ms : j.finished_ms) = e[i + 1].as_integer().value_or(0);
    if (completed) j.attempts = 1; // more runs leave a record, read below
    out.push_back(std::move(j));
  }
  std::vector<std::string_view> args;
  args.push_back(records_key);
  for (const auto& j : out)
    args.push_back(j.id);
  redis::request get;
  get.push_range("HMGET", args);
  auto records = redis::connection::single(co_await exec(get));
  if (!records) co_return records.error();
  for (std::size_t i = 0; i < out.size() && i < records->elements().size(); ++i) {
    const auto& rec = records->elements()[i];
    if (!rec.is_string()) {
      if (state == "dead")
        out[i].reason = "its record is missing (dead:jobs has no entry for this id)";
      continue;
    }
    auto o = parse_object(rec.str());
    if (!completed) {
      take_fields(out[i], o);
      continue;
    }
    if (auto* v = o.if_contains("result"); v && !v->is_null()) out[i].result = serialize_utf8(*v);
    if (auto* v = o.if_contains("attempt"); v && v->is_int64())
      out[i].attempts = static_cast<int>(v->as_int64());
    if (auto* v = o.if_contains("finished_ms"); v && v->is_int64())
      out[i].finished_ms = v->as_int64();
  }
  co_return out;
}

// Ready jobs: each stream's entries beyond its group's last delivered one (all of them before a
// consumer made the group). Active jobs: each stream's pending list, whose entries are the
// leases. Highest priority first, oldest first within one; offset + limit of each stream read,
// so the cost is bounded by the page's depth, not the queue's length.
boost::asio::awaitable<result<std::vector<job_info>>>
client::list_in_streams(std::string_view queue, std::string_view state, std::size_t offset,
                        std::size_t limit) {
  constexpr std::size_t deepest = 10000;
  if (offset + limit > deepest)
    co_return error(errc::invalid_value, std::string(state) + " jobs are listed 10,000 deep: " +
                                             "offset + limit must be at most 10000");
  std::vector<job_info> out;
  if (limit == 0) co_return out;
  const bool active = state == "active";
  const queue::keys k(queue);
  const auto want = std::to_string(offset + limit);
  redis::request first;
  for (int p = 9; p >= 0; --p)
    if (active)
      first.push("XPENDING", k.stream_for(p), group, "-", "+", want);
    else
      first.push("XINFO", "GROUPS", k.stream_for(p));
  auto r = co_await exec(first);
  if (!r) co_return r.error();
  struct found {
    int priority;
    std::string entry, consumer;
    std::int64_t idle = 0;
  };
  std::vector<found> entries; // active: the page's leases
  redis::request second;      // ready: a range of each stream; active: each entry of the page
  std::size_t skipped = 0;
  for (int p = 9; p >= 0; --p) {
    const auto& reply = (*r)[static_cast<std::size_t>(9 - p)];
    if (active) {
      if (!reply.is_array()) continue; // no stream, or no group yet: nothing leased
      for (const auto& e : reply.elements()) {
        if (!e.is_array() || e.elements().size() < 3) continue;
        if (skipped < offset) {
          ++skipped;
          continue;
        }
        if (entries.size() >= limit) break;
        const auto& f = e.elements();
        entries.push_back(found{p, std::string(f[0].str()), std::string(f[1].str()),
                                f[2].as_integer().value_or(0)});
        second.push("XRANGE", k.stream_for(p), f[0].str(), f[0].str());
      }
      continue;
    }
    std::string from = "-";
    if (reply.is_array())
      for (const auto& g : reply.elements()) {
        const auto& kv = g.elements();
        std::string name, last;
        for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
          if (kv[i].str() == "name") name = kv[i + 1].str();
          if (kv[i].str() == "last-delivered-id") last = kv[i + 1].str();
        }
        if (name == group) from = "(" + last;
      }
    second.push("XRANGE", k.stream_for(p), from, "+", "COUNT", want);
  }
  if (second.empty()) co_return out;
  auto s2 = co_await exec(second);
  if (!s2) co_return s2.error();
  auto add = [&](int p, const redis::reply& entry) {
    job_info j;
    j.queue = queue;
    j.state = std::string(state);
    j.priority = p;
    const std::string id(entry.elements()[0].str());
    auto fields = entry_fields(entry);
    j.id = string_field(fields, "id").value_or(queue::first_attempt_id(id, p));
    j.queued_ms = static_cast<std::int64_t>(entry_order(id).first);
    take_fields(j, fields);
    out.push_back(std::move(j));
  };
  if (active) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto& e = (*s2)[i];
      if (e.is_array() && !e.elements().empty() && e.elements()[0].is_array()) {
        add(entries[i].priority, e.elements()[0]);
      } else { // the entry is gone (trimmed by a foreign tool): the lease is all there is
        job_info j;
        j.queue = queue;
        j.state = "active";
        j.priority = entries[i].priority;
        j.id = queue::first_attempt_id(entries[i].entry, entries[i].priority);
        j.queued_ms = static_cast<std::int64_t>(entry_order(entries[i].entry).first);
        out.push_back(std::move(j));
      }
      out.back().consumer = entries[i].consumer;
      out.back().lease_idle_ms = entries[i].idle;
    }
    // Each running job's latest progress, for the page's jobs only.
    if (!out.empty()) {
      redis::request pr;
      std::vector<std::string_view> ids{k.progress};
      for (const auto& j : out)
        ids.push_back(j.id);
      pr.push_range("HMGET", ids);
      auto got = redis::connection::single(co_await conn_.exec(pr, opts_));
      if (!got) co_return got.error();
      if (got->is_array() && got->elements().size() == out.size())
        for (std::size_t i = 0; i < out.size(); ++i)
          if (got->elements()[i].is_string())
            out[i].progress = std::string(got->elements()[i].str());
    }
    co_return out;
  }
  for (int p = 9; p >= 0 && out.size() < limit; --p) {
    const auto& range = (*s2)[static_cast<std::size_t>(9 - p)];
    if (!range.is_array()) continue;
    for (const auto& entry : range.elements()) {
      if (out.size() >= limit) break;
      if (!entry.is_array() || entry.elements().size() != 2) continue;
      if (skipped < offset) {
        ++skipped;
        continue;
      }
      add(p, entry);
    }
  }
  co_return out;
}

namespace {

bool job_contains(const job_info& j, std::string_view text) {
  auto has = [&](const std::optional<std::string>& s) {
    return s && s->find(text) != std::string::npos;
  };
  return j.id.find(text) != std::string::npos || j.handler.find(text) != std::string::npos ||
         j.payload.find(text) != std::string::npos || has(j.result) || has(j.last_error) ||
         has(j.reason);
}

} // namespace

boost::asio::awaitable<result<std::vector<std::string>>>
client::dead_matching(std::string_view queue, std::string_view text) {
  if (text.empty()) co_return error(errc::invalid_value, "nothing to match");
  std::vector<std::string> ids;
  constexpr std::size_t batch = 1000;
  for (std::size_t offset = 0;; offset += batch) {
    auto some = co_await list_jobs(queue, "dead", offset, batch);
    if (!some) co_return some.error();
    for (const auto& j : *some)
      if (job_contains(j, text)) ids.push_back(j.id);
    if (some->size() < batch) break;
  }
  co_return ids;
}

boost::asio::awaitable<result<std::vector<job_info>>> client::search(std::string_view queue,
                                                                     std::string_view text,
                                                                     std::size_t scan_each,
                                                                     std::size_t most) {
  std::vector<job_info> found;
  if (text.empty()) co_return error(errc::invalid_value, "nothing to search for");
  static constexpr std::array<std::string_view, 3> states{"dead", "delayed", "completed"};
  for (const auto state : states) {
    auto some = co_await list_jobs(queue, state, 0, scan_each);
    if (!some) co_return some.error();
    for (auto& j : *some) {
      if (found.size() >= most) co_return found;
      if (job_contains(j, text)) found.push_back(std::move(j));
    }
  }
  co_return found;
}

} // namespace forq
