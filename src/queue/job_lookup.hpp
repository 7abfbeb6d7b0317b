#pragma once

// A job looked up by its id in one queue (client::get_job, find_job, set_progress, cancel,
// wait), by job.lua, the lookup the Node and Python clients call too. Private to src/queue.

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
// find_job looks first with push_first's plain reads, pipelined over many queues at once, and
// runs the lookup only in a queue where they found something.
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

  // One call of job.lua (docs/protocol.md, "Looking a job up"): every place by the id, read
  // atomically on the queue's slot, so a job that moves meanwhile is seen in one place or the
  // other. The clients for Node and Python make the same call.
  boost::asio::awaitable<found> run() {
    std::vector<std::string> key_storage{
        k_.results_data,   k_.dead_jobs, k_.dead,
        k_.delayed_jobs,   k_.delayed,   queue::keys::unique_key(k_queue_, id_),
        k_.entries,        k_.results,   k_.progress,
        k_.cancelled_jobs, k_.cancel};
    key_storage.insert(key_storage.end(), streams_.begin(), streams_.end());
    const std::vector<std::string_view> keys(key_storage.begin(), key_storage.end());
    const std::vector<std::string_view> args{id_, group};
    auto r = co_await redis::eval(conn_, queue::detail::scripts().job, keys, args, opts_);
    if (!r) co_return r.error();
    if (r->is_error()) co_return error(errc::redis_refused, std::string(r->str()));
    if (!r->is_array()) co_return error(errc::redis_protocol, r->to_string());
    const redis::reply* at[8] = {}; // state, record, fields, score, priority, entry, progress,
                                    // cancel
    static constexpr std::string_view names[8] = {"state",    "record", "fields",   "score",
                                                  "priority", "entry",  "progress", "cancel"};
    const auto& v = r->elements();
    for (std::size_t i = 0; i + 1 < v.size(); i += 2)
      for (std::size_t n = 0; n < 8; ++n)
        if (v[i].str() == names[n]) at[n] = &v[i + 1];
    if (!at[0]) co_return std::optional<job_info>(); // nowhere
    const std::string state(at[0]->str());
    auto text = [&](int n) { return at[n] ? std::string(at[n]->str()) : std::string(); };
    if (state == "index") co_return co_await in_results_index();
    if (state == "completed") {
      auto o = parse_object(text(1));
      info_.state = state;
      if (auto* x = o.if_contains("result"); x && !x->is_null()) info_.result = serialize_utf8(*x);
      if (auto* x = o.if_contains("attempt"); x && x->is_int64())
        info_.attempts = static_cast<int>(x->as_int64());
      if (auto* x = o.if_contains("finished_ms"); x && x->is_int64())
        info_.finished_ms = x->as_int64();
      co_return std::optional(info_);
    }
    if (state == "dead" || state == "cancelled" || state == "delayed") {
      info_.state = state;
      take_fields(info_, parse_object(text(1)));
      if (at[3] && state == "dead") info_.finished_ms = to_int(text(3));
      if (at[3] && state == "delayed") info_.run_at_ms = to_int(text(3));
      co_return std::optional(info_);
    }
    // active or ready: its entry.
    json::object fields;
    if (at[2] && at[2]->is_array()) {
      const auto& kv = at[2]->elements();
      for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
        fields[kv[i].str()] = kv[i + 1].str();
    }
    take_fields(info_, fields);
    const auto p = static_cast<std::size_t>(to_int(text(4)));
    if (p >= streams_.size()) co_return error(errc::redis_protocol, "job.lua: priority " + text(4));
    info_.priority = static_cast<int>(p);
    info_.state = state;
    stream_ = streams_[p];
    entry_ = text(5);
    if (state == "active" && at[6]) info_.progress = text(6);
    if (state == "active" && at[7]) {
      // Cancel asked for, not yet heard by its worker (cancel.lua's mark).
      info_.cancel_requested = true;
      auto m = parse_object(text(7));
      if (auto by = string_field(m, "by")) info_.cancelled_by = *by;
      if (auto why = string_field(m, "reason")) info_.cancel_reason = *why;
    }
    co_return std::optional(info_);
  }

 private:
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
  std::string stream_, entry_; // where run() found it (ready or active)
  std::string k_queue_;
  job_info info_;
};

} // namespace forq::client_detail
