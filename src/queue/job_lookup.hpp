#pragma once

// A job looked up by its id in one queue (client::get_job, find_job, set_progress, cancel,
// wait): most likely place first, every read by the id. Private to src/queue.

#include "forq/client.hpp"
#include "queue/client_detail.hpp"
#include "queue/job.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/json/parse.hpp>

#include <optional>
#include <string>
#include <vector>

namespace forq::client_detail {

// client::get_job's steps, most likely place first: the records kept by id, the job's entry in
// its stream (the latest one the entries index names, else its first), then the results index.
// Every step reads by the id: the cost does not grow with the queue's backlog (docs/http.md).
class job_lookup {
 public:
  using found = result<std::optional<job_info>>;

  job_lookup(redis::connection& conn, redis::exec_options opts, std::string_view queue,
             std::string_view id)
      : conn_(conn)
      , opts_(opts)
      , k_(queue)
      , id_(id)
      , streams_(k_.streams())
      , k_queue_(queue) {
    info_.queue = queue;
    info_.id = id;
  }

  // Everything addressable by the id, as `first_reads` commands: its records, its caller id's
  // marker, the entries index, the results index; for a generated id, its first entry.
  static constexpr std::size_t first_reads = 12;
  static void push_first(redis::request& req, const queue::keys& k, std::string_view queue,
                         std::string_view id) {
    req.push("HGET", k.results_data, id);                // 0
    req.push("HGET", k.dead_jobs, id);                   // 1
    req.push("ZSCORE", k.dead, id);                      // 2
    req.push("HGET", k.delayed_jobs, id);                // 3
    req.push("ZSCORE", k.delayed, id);                   // 4
    req.push("GET", queue::keys::unique_key(queue, id)); // 5: caller id -> first entry id
    req.push("HGET", k.entries, id);                     // 6: its latest entry, if moved
    req.push("LPOS", k.results, id);                     // 7: in the results index?
    if (auto e = queue::entry_of(id))                    // 8: a generated id's entry
      req.push("XRANGE", k.stream_for(e->second), e->first, e->first);
    else
      req.push("EXISTS", k.meta);     // (a placeholder on the queue's slot: read as "no entry")
    req.push("HGET", k.progress, id); // 9: a running attempt's progress
    req.push("HGET", k.cancelled_jobs, id); // 10: cancelled
    req.push("HGET", k.cancel, id);         // 11: a running job's cancel mark
  }
  // Whether the first reads found anything of the id in this queue.
  static bool maybe_here(const redis::connection::response& r, std::size_t at,
                         std::string_view id) {
    for (std::size_t i = at; i < at + 8 && i < r.size(); ++i)
      if (!r[i].is_nil() && !r[i].is_error()) return true;
    if (at + 10 < r.size() && r[at + 10].is_string()) return true;
    return queue::entry_of(id) && at + 8 < r.size() && r[at + 8].is_array() &&
           !r[at + 8].elements().empty();
  }

  // Where the job was found in a stream (ready or active): its stream and entry; else empty.
  const std::string& stream() const { return stream_; }
  const std::string& entry() const { return entry_; }

  boost::asio::awaitable<found> run() {
    // Everything addressable by the id, in one round trip. A job that settled between those
    // reads and its entry's (acknowledged, retried, dead meanwhile) is looked for again: its
    // new place was written before its entry was settled.
    for (int tries = 0;; ++tries) {
      redis::request req;
      push_first(req, k_, info_.queue, id_);
      auto r = co_await exec(req);
      if (!r) co_return r.error();
      settled_seen_ = false;
      auto f = co_await from_first(*r);
      if (!f || *f || !settled_seen_ || tries == 2) co_return f;
      info_ = job_info{};
      info_.queue = k_queue_;
      info_.id = id_;
    }
  }

  // The rest of the lookup, from what the first reads (push_first's) found.
  boost::asio::awaitable<found> from_first(const redis::connection::response& first) {
    auto f = co_await from_first_reads(first);
    if (f && *f && (*f)->state == "active" && first.size() > 9 && first[9].is_string())
      (*f)->progress = std::string(first[9].str());
    if (f && *f && (*f)->state == "active" && first.size() > 11 && first[11].is_string()) {
      // Cancel asked for, not yet heard by its worker (cancel.lua's mark).
      (*f)->cancel_requested = true;
      error_code ec;
      auto m = json::parse(first[11].str(), ec);
      if (!ec && m.is_object()) {
        if (auto by = string_field(m.as_object(), "by")) (*f)->cancelled_by = *by;
        if (auto why = string_field(m.as_object(), "reason")) (*f)->cancel_reason = *why;
      }
    }
    co_return f;
  }

 private:
  boost::asio::awaitable<found> from_first_reads(const redis::connection::response& first) {
    const auto* r = &first;
    if (from_records(*r)) co_return info_;
    std::optional<found> in_stream;
    if (auto latest = moved_entry((*r)[6])) {
      in_stream = co_await in_entry(latest->second, latest->first);
    } else {
      // Its first attempt's entry: named by a generated id, or where a caller id's marker
      // points (then the entry carries the id).
      if ((*r)[5].is_string())
        in_stream = co_await in_entry(std::string((*r)[5].str()), std::nullopt);
      else if (auto e = queue::entry_of(id_))
        in_stream = co_await in_entry(e->first, static_cast<std::size_t>(e->second));
    }
    if (in_stream && (!*in_stream || **in_stream)) co_return std::move(*in_stream);
    if (!(*r)[7].as_integer()) co_return std::optional<job_info>(); // nowhere
    co_return co_await in_results_index();
  }

  boost::asio::awaitable<boost::system::result<redis::connection::response>>
  exec(const redis::request& req) {
    return conn_.exec(req, opts_);
  }

  // A completed job with a record, a dead one or a delayed one.
  bool from_records(const redis::connection::response& at) {
    if (at[0].is_string()) {
      auto o = parse_object(at[0].str());
      info_.state = "completed";
      if (auto* v = o.if_contains("result"); v && !v->is_null()) info_.result = serialize_utf8(*v);
      if (auto* v = o.if_contains("attempt"); v && v->is_int64())
        info_.attempts = static_cast<int>(v->as_int64());
      if (auto* v = o.if_contains("finished_ms"); v && v->is_int64())
        info_.finished_ms = v->as_int64();
      return true;
    }
    if (at[1].is_string()) {
      info_.state = "dead";
      take_fields(info_, parse_object(at[1].str()));
      if (at[2].is_string()) info_.finished_ms = to_int(at[2].str());
      return true;
    }
    if (at.size() > 10 && at[10].is_string()) {
      info_.state = "cancelled";
      take_fields(info_, parse_object(at[10].str()));
      return true;
    }
    if (at[3].is_string()) {
      info_.state = "delayed";
      take_fields(info_, parse_object(at[3].str()));
      if (at[4].is_string()) info_.run_at_ms = to_int(at[4].str());
      return true;
    }
    return false;
  }

  // "<priority>:<entry id>" from the entries index, or nothing.
  static std::optional<std::pair<std::size_t, std::string>> moved_entry(const redis::reply& r) {
    if (!r.is_string()) return std::nullopt;
    auto v = r.str();
    if (v.size() < 3 || v[1] != ':' || v[0] < '0' || v[0] > '9') return std::nullopt;
    return std::pair{static_cast<std::size_t>(v[0] - '0'), std::string(v.substr(2))};
  }

  // An entry still in a stream is active (pending), ready (not delivered yet: beyond the
  // group's last delivered id), or settled (acknowledged, awaiting trimming: not this job's
  // current state, which is then found elsewhere). Reads the stream's last delivered id.
  boost::asio::awaitable<result<std::optional<std::string>>> state_of(std::size_t p,
                                                                      const std::string& entry) {
    redis::request q;
    q.push("XPENDING", streams_[p], group, entry, entry, "1");
    q.push("XINFO", "GROUPS", streams_[p]);
    auto r = co_await exec(q);
    if (!r) co_return r.error();
    const auto& pr = (*r)[0];
    if (pr.is_array() && !pr.elements().empty()) co_return std::optional<std::string>("active");
    std::string last;
    if ((*r)[1].is_array())
      for (const auto& g : (*r)[1].elements()) {
        const auto& kv = g.elements();
        std::string name, delivered;
        for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
          if (kv[i].str() == "name") name = kv[i + 1].str();
          if (kv[i].str() == "last-delivered-id") delivered = kv[i + 1].str();
        }
        if (name == group) last = delivered;
      }
    if (last.empty() || entry_order(entry) > entry_order(last))
      co_return std::optional<std::string>("ready");
    co_return std::optional<std::string>();
  }

  // The job at `entry`, on the stream of priority `only` (or on whichever holds it): nothing
  // when no stream has it as this job's, or when it is settled (its later life is elsewhere).
  boost::asio::awaitable<found> in_entry(const std::string& entry,
                                         std::optional<std::size_t> only) {
    if (!looks_like_entry_id(entry) || (only && *only >= streams_.size()))
      co_return std::optional<job_info>();
    redis::request look;
    for (std::size_t p = 0; p < streams_.size(); ++p)
      if (!only || p == *only) look.push("XRANGE", streams_[p], entry, entry);
    auto lr = co_await exec(look);
    if (!lr) co_return lr.error();
    for (std::size_t i = 0; i < lr->size(); ++i) {
      const std::size_t p = only ? *only : i;
      const auto& e = (*lr)[i];
      if (!e.is_array() || e.elements().empty()) continue;
      auto fields = entry_fields(e.elements()[0]);
      // A marker or an index entry can outlive the entry it names: only this job's counts
      // (a generated id's entry carries no id field; it is the id).
      auto own = string_field(fields, "id");
      if (own ? *own != id_ : queue::entry_of(id_) == std::nullopt) continue;
      auto st = co_await state_of(p, entry);
      if (!st) co_return st.error();
      if (!*st) {
        settled_seen_ = true;
        break;
      }
      take_fields(info_, fields);
      info_.priority = static_cast<int>(p);
      info_.state = **st;
      stream_ = streams_[p];
      entry_ = entry;
      co_return std::optional(info_);
    }
    co_return std::optional<job_info>();
  }

  // Completed without a result: only the results index knows it (bounded by max_results).
  // Read in Redis (results.lua): an absent id costs one LPOS and sends nothing back.
  boost::asio::awaitable<found> in_results_index() {
    const std::vector<std::string_view> keys{k_.results}, args{"find", id_};
    auto ir = co_await redis::eval(conn_, queue::detail::scripts().results, keys, args, opts_);
    if (!ir) co_return ir.error();
    if (ir->is_error()) co_return error(errc::redis_refused, std::string(ir->str()));
    auto ms = ir->as_integer();
    if (!ms) co_return std::optional<job_info>();
    info_.state = "completed";
    info_.attempts = 1; // a job that took more runs has a record (results:data)
    info_.finished_ms = *ms;
    co_return std::optional(info_);
  }

  redis::connection& conn_;
  redis::exec_options opts_;
  queue::keys k_;
  std::string id_;
  std::vector<std::string> streams_;
  std::string stream_, entry_; // in_entry's find
  std::string k_queue_;
  bool settled_seen_ = false; // in_entry found the entry settled: the job moved meanwhile
  job_info info_;
};

} // namespace forq::client_detail
