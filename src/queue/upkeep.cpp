// A consumer's upkeep: promoting due delayed jobs, renewing leases, recovering stalled jobs,
// tidying results, healing a queue whose keys vanished.
#include "consumer_detail.hpp"
#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <unistd.h>
#include <variant>

namespace forq::queue {

using namespace detail; // asio, milliseconds, use_tuple, pause_for, ...

// Tidies when there is something to tidy, not on a clock: after settling jobs (at most every
// tidy_every), when the oldest result is due for eviction, while writes are refused (tidy is
// then the probe), and for the keeper now and then (everything).
asio::awaitable<void> consumer::tidy_loop() {
  using clock = std::chrono::steady_clock;
  auto last = clock::now() - options_.tidy_every;
  auto full_at = clock::time_point::max(); // the keeper's next tidy of everything
  while (!wound_down()) {
    auto now = clock::now();
    const bool keeping = keeper();
    if (!keeping)
      full_at = clock::time_point::max();
    else if (full_at == clock::time_point::max())
      full_at = now; // the keeper starts with one
    auto due = std::min(evict_at_, full_at);
    if (!settled_streams_.empty() || refusals_.active())
      due = std::min(due, last + options_.tidy_every);
    if (acked_since_tidy_ >= 20000) due = now; // a burst: keep the index short
    // (Waking to ask whether the keeper role came here costs Redis nothing.)
    tidy_due_.expires_at(keeping ? due : std::min(due, now + options_.promote_check_every));
    co_await tidy_due_.async_wait(use_tuple);
    if (clock::now() < due) continue; // woken: something changed; weigh it again
    const bool all = clock::now() >= full_at;
    co_await tidy(all);
    last = clock::now();
    if (all) full_at = last + options_.full_upkeep_every;
  }
}

void consumer::settled(const std::string& stream) {
  bool first = settled_streams_.empty();
  settled_streams_.insert(stream);
  if (first) tidy_due_.cancel(); // the tidy loop may sleep until an eviction is due
}

asio::awaitable<void> consumer::tidy(bool all) {
  acked_since_tidy_ = 0;
  keys k(options_.queue);
  std::vector<std::string> key_storage;
  key_storage.push_back(k.results);
  key_storage.push_back(k.results_data);
  key_storage.push_back(k.stats);
  key_storage.push_back(k.entries);
  key_storage.push_back(k.progress);
  key_storage.push_back(k.cancel);
  std::vector<std::string> streams;
  // While results are evicted back to back (a drain past max_results: a call every ~0.1 ms),
  // the streams are trimmed once per tidy_every, not by every call: a trim is an XPENDING and
  // an XTRIM per stream, most of what a call costs when it evicts 100 results.
  const auto now_steady = std::chrono::steady_clock::now();
  const bool trim = all || !evicting_ || now_steady - trimmed_at_ >= options_.tidy_every;
  if (all)
    streams = k.streams();
  else if (trim)
    streams.assign(settled_streams_.begin(), settled_streams_.end());
  if (trim) {
    settled_streams_.clear();
    trimmed_at_ = now_steady;
  }
  key_storage.insert(key_storage.end(), streams.begin(), streams.end());
  std::vector<std::string_view> keys_v(key_storage.begin(), key_storage.end());
  const auto keep_ms = std::to_string(options_.keep_results.count());
  const auto keep_max = std::to_string(options_.max_results);
  // Results evicted per call. Redis runs a script alone: 5,000 a call held every other client
  // for 1.5-6 ms, and a queue past max_results at 20,000 jobs/s evicts all the time, so pick-up
  // p99 was 3-6 ms (docs/benchmarks.md). A call of 250 now takes ~0.085 ms (one of 100 took
  // ~0.077 ms before the script read only headers): a backlog is worked off by calls back to
  // back (the script says "more now"), with others' commands in between.
  const std::string budget = "250";
  auto now = now_ms();
  std::vector<std::string_view> args;
  args.push_back(group);
  args.push_back(now);
  args.push_back(keep_ms);
  args.push_back(keep_max);
  args.push_back(budget);
  if (refusals_.active()) {
    // Refusing writes: a write that changes nothing tells whether Redis takes writes again
    // (the fetch's XREADGROUP does not: Redis runs it even at maxmemory).
    auto probe = co_await pool_.commands().command("HINCRBY", k.stats, "completed", "0");
    if (probe && !probe->is_error()) write_accepted();
  }
  auto r = co_await redis::eval(pool_.commands(), detail::scripts().tidy, keys_v, args);
  if (r && r->is_array() && r->elements().size() == 3) {
    auto next = r->elements()[2].as_integer().value_or(-1);
    evicting_ = next == 0;
    evict_at_ = next < 0 ? std::chrono::steady_clock::time_point::max()
                         : std::chrono::steady_clock::now() + milliseconds(next);
    co_return;
  }
  for (auto& s : streams) // not done: trim them next time
    settled_streams_.insert(std::move(s));
  if (r && r->is_error()) co_await on_error_reply("tidying", *r, false);
}

asio::awaitable<void> consumer::on_error_reply(std::string_view doing, const redis::reply& r,
                                               bool pace) {
  if (r.is_nogroup()) {
    co_await heal();
    co_return;
  }
  if (r.is_write_refused()) {
    if (!refusals_.active()) tidy_due_.cancel(); // tidy probes whether writes are taken again
    auto step = refusals_.refused(options_.queue, r.str());
    if (!step.log.empty()) spdlog::warn("{}", step.log);
    if (pace) co_await pause_for(step.wait);
    co_return;
  }
  // Anything else (a key of the wrong type, a script error): said when it first happens and
  // once a minute while it repeats, not once a second.
  if (r.str() != last_error_) {
    last_error_ = r.str();
    error_repeats_ = 0;
    spdlog::error("{} queue {} failed: {}", doing, options_.queue, r.str());
  } else if (++error_repeats_ % 60 == 0) {
    spdlog::error("{} queue {} still fails ({} times since it was first said): {}", doing,
                  options_.queue, error_repeats_, r.str());
  }
  if (pace) co_await pause_for(milliseconds(1000));
}

asio::awaitable<void> consumer::heal() {
  if (healing_) { // another loop of this consumer is at it: let it finish
    co_await pause_for(milliseconds(100));
    co_return;
  }
  healing_ = true;
  auto ec = co_await restore_queue(pool_.commands(), options_.queue);
  healing_ = false;
  cursors_.clear();              // stall recovery's scans start over on the new streams
  noted_priorities_.fill(false); // the `priorities` set went with the other keys
  priorities_read_.reset();
  if (ec == errc::redis_refuses_writes) { // an empty replica, say: wait for a primary
    auto step = refusals_.refused(options_.queue, "its keys are gone and cannot be written again");
    if (!step.log.empty()) spdlog::warn("{}", step.log);
    co_await pause_for(step.wait);
  } else if (ec) {
    spdlog::warn("queue {}: initialising it again failed ({}); trying again", options_.queue,
                 ec.message());
    co_await pause_for(milliseconds(1000));
  }
}

void consumer::write_accepted() {
  if (!refusals_.active()) return;
  auto line = refusals_.accepted(options_.queue);
  if (!line.empty()) spdlog::info("{}", line);
}

asio::awaitable<void> consumer::promote_loop() {
  keys k(options_.queue);
  std::vector<std::string> key_storage;
  key_storage.push_back(k.delayed);
  key_storage.push_back(k.delayed_jobs);
  for (auto& s : k.streams())
    key_storage.push_back(std::move(s));
  key_storage.push_back(k.dead);
  key_storage.push_back(k.dead_jobs);
  key_storage.push_back(k.entries);
  std::vector<std::string_view> keys_v(key_storage.begin(), key_storage.end());
  const std::string limit = "100";
  using clock = std::chrono::steady_clock;
  // The keeper looks every promote_check_every at the latest; the others when the next delayed
  // job they know of is due, or a doorbell, a retry of theirs or stop() wakes them (a timer
  // that fires for nothing but the keeper question sends nothing).
  bool look = false;
  auto known_due = clock::time_point::max();
  while (!wound_down()) {
    if (!stopping_ && (look || keeper() || clock::now() >= known_due)) {
      auto now = now_ms();
      // The head of `delayed` alone says whether anything is due: one plain command, where the
      // script costs Redis several times more. Only what is due needs the script.
      redis::request head("ZRANGE", k.delayed, "0", "0", "WITHSCORES");
      auto h = redis::connection::single(co_await pool_.commands().exec(head));
      bool due_now = true; // or not known: the script decides
      if (h && h->is_array() && h->elements().empty()) {
        due_now = false;
        known_due = clock::time_point::max();
      } else if (h && h->is_array() && h->elements().size() == 2) {
        double in = std::strtod(std::string(h->elements()[1].str()).c_str(), nullptr) -
                    std::strtod(now.c_str(), nullptr);
        if (in > 0) {
          due_now = false;
          known_due = clock::now() + milliseconds(static_cast<long long>(std::ceil(in)));
        }
      }
      if (due_now) {
        std::vector<std::string_view> args;
        args.push_back(now);
        args.push_back(limit);
        auto r = co_await redis::eval(pool_.commands(), detail::scripts().promote, keys_v, args);
        known_due = clock::time_point::max();
        if (r && r->is_array() && r->elements().size() == 2) {
          auto promoted = r->elements()[0].as_integer().value_or(0);
          auto wait_ms = r->elements()[1].as_integer().value_or(-1);
          if (promoted == 100)
            known_due = clock::now();
          else if (wait_ms >= 0)
            known_due = clock::now() + milliseconds(wait_ms);
        } else {
          known_due = clock::now() + options_.promote_check_every; // failed: try again then
        }
      }
    }
    // The wake-up that says "done" may have come while this looked: see before waiting.
    if (wound_down()) break;
    promote_due_.expires_at(std::min(known_due, clock::now() + options_.promote_check_every));
    auto [ec] = co_await promote_due_.async_wait(use_tuple);
    // Woken on purpose (a doorbell, a retry): look now. Not for stop(): nothing runs after it.
    look = ec == asio::error::operation_aborted && !stopping_;
  }
}

asio::awaitable<void> consumer::schedule_loop() {
  // The keeper alone looks: one consumer of the queue per host. Keepers of several hosts may
  // look at the same slot; the claim script makes it one job.
  if (!options_.schedules) co_return;
  while (!stopping_ && !fetching_done_) {
    auto wait = options_.schedule_check_every;
    if (keeper()) wait = co_await options_.schedules(pool_.commands(), wait);
    if (stopping_ || fetching_done_) break;
    schedule_due_.expires_after(wait);
    co_await schedule_due_.async_wait(use_tuple);
  }
}

asio::awaitable<void> consumer::renew_loop() {
  using clock = std::chrono::steady_clock;
  const auto every = options_.lease / 3;
  auto renew_at = clock::now() + every;
  while (!wound_down()) {
    renew_due_.expires_at(renew_at);
    co_await renew_due_.async_wait(use_tuple);
    if (clock::now() < renew_at) continue; // woken early (stop, the end of fetching): not yet
    // From the send, not the reply: a 200 ms round trip must not stretch a third of a lease.
    renew_at = clock::now() + every;
    co_await renew_leases();
  }
}

asio::awaitable<void> consumer::stall_loop() {
  using clock = std::chrono::steady_clock;
  const auto every = options_.lease / 3;
  auto full_scan_at = clock::now() + options_.full_upkeep_every;
  auto look_at = clock::now() + every;
  while (!wound_down()) {
    lease_due_.expires_at(look_at);
    co_await lease_due_.async_wait(use_tuple);
    if (clock::now() < look_at) continue;
    // The keeper looks for stalled jobs; so does any consumer while it holds jobs. Every stream
    // now and then; otherwise the priorities consumers fetch from. A lease about to run out
    // (nobody renewed it for two thirds of it) brings the next look to within a second of it.
    const bool busy = std::any_of(active_.begin(), active_.end(),
                                  [](const auto& s) { return !s.second.empty(); });
    bool expiring = false;
    if (!stopping_ && (busy || keeper())) {
      const bool all = clock::now() >= full_scan_at;
      expiring = co_await recover_stalled(all);
      if (all) full_scan_at = clock::now() + options_.full_upkeep_every;
    }
    look_at =
        clock::now() + (expiring ? std::min<milliseconds>(every, std::chrono::seconds(1)) : every);
  }
}

// Renew every lease this process holds, one XCLAIM per stream: min-idle 0 and JUSTID reset the
// idle time without counting a delivery. On a timer, so a busy handler cannot starve it.
asio::awaitable<void> consumer::renew_leases() {
  redis::request renew;
  for (const auto& [stream, ids] : active_) {
    if (ids.empty()) continue;
    std::vector<std::string_view> args;
    args.push_back(stream);
    args.push_back(group);
    args.push_back(name_);
    args.push_back("0");
    for (const auto& id : ids)
      args.push_back(id);
    args.push_back("JUSTID");
    renew.push_range("XCLAIM", args);
  }
  if (!renew.empty()) co_await pool_.commands().exec(renew);
}

void release_keeper(std::atomic<std::int32_t>& holder) {
  auto me = static_cast<std::int32_t>(::getpid());
  holder.compare_exchange_strong(me, 0);
}

bool claim_keeper(std::atomic<std::int32_t>& holder) {
  const auto me = static_cast<std::int32_t>(::getpid());
  auto current = holder.load(std::memory_order_relaxed);
  if (current == me) return true;
  // A holder that has exited (the master reaps its workers at once) gives the role up.
  if (current != 0 && (::kill(current, 0) == 0 || errno != ESRCH)) return false;
  return holder.compare_exchange_strong(current, me) || current == me;
}

asio::awaitable<void> consumer::note_priorities(const std::vector<delivered_job>& got) {
  redis::request add;
  std::vector<std::string> members;
  for (const auto& j : got) {
    if (j.priority < 1 || j.priority > 9) continue; // 0: always looked at
    auto& noted = noted_priorities_[static_cast<std::size_t>(j.priority)];
    if (noted) continue;
    noted = true;
    members.push_back(std::to_string(j.priority));
  }
  if (members.empty()) co_return;
  keys k(options_.queue);
  std::vector<std::string_view> args;
  args.push_back(k.priorities);
  args.insert(args.end(), members.begin(), members.end());
  add.push_range("SADD", args);
  auto r = co_await pool_.commands().exec(add);
  if (!r || (*r)[0].is_error()) // said again with the next job of these priorities
    for (const auto& m : members)
      noted_priorities_[static_cast<std::size_t>(m[0] - '0')] = false;
}

asio::awaitable<bool> consumer::recover_stalled(bool all) {
  keys k(options_.queue);
  if (room() == 0) co_return false; // no room: others, or a later look, take them
  auto lease_ms = std::to_string(options_.lease.count());
  auto expiring_ms = std::to_string(options_.lease.count() - options_.lease.count() / 3);
  auto claim_count = std::to_string(std::min<std::size_t>(100, room()));
  const auto look = co_await stall_look_priorities(all);
  // Entries whose lease ran out, on those streams, in one round trip. Each stream's scan goes
  // on from where the last one stopped (XAUTOCLAIM looks at COUNT x 10 entries a call).
  redis::request claim;
  std::vector<std::string> streams;
  for (int p = 9; p >= 0; --p) {
    if (!look[static_cast<std::size_t>(p)]) continue;
    streams.push_back(k.stream_for(p));
    auto& cursor = cursors_[streams.back()];
    if (cursor.empty()) cursor = "0-0";
    claim.push("XAUTOCLAIM", streams.back(), group, name_, lease_ms, cursor, "COUNT", claim_count);
    // An entry nobody renewed for two thirds of a lease: its lease runs out before a next look
    // a third of a lease away would come.
    claim.push("XPENDING", streams.back(), group, "IDLE", expiring_ms, "-", "+", "1");
  }
  auto claimed = co_await pool_.commands().exec(claim);
  if (!claimed) co_return false;
  bool expiring = false;
  std::vector<std::pair<std::string, const redis::reply*>> found;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    const auto& pending = (*claimed)[2 * i + 1];
    expiring = expiring || (pending.is_array() && !pending.elements().empty());
    const auto& r = (*claimed)[2 * i];
    if (!r.is_array() || r.elements().size() < 2) continue;
    cursors_[streams[i]] = std::string(r.elements()[0].str());
    for (const auto& e : r.elements()[1].elements()) {
      if (!e.is_array() || e.elements().size() != 2) continue;
      // One of this consumer's own attempts whose renewal failed: it is still running here.
      if (active_[streams[i]].count(std::string(e.elements()[0].str()))) continue;
      found.emplace_back(streams[i], &e);
    }
  }
  if (!found.empty()) co_await rerun_stalled(found);
  co_return expiring;
}

asio::awaitable<std::array<bool, 10>> consumer::stall_look_priorities(bool all) {
  std::array<bool, 10> look{};
  if (all) {
    look.fill(true);
    co_return look;
  }
  // 0 (where most jobs are, and what consumers that keep no `priorities` set fetch from most),
  // and those in the queue's `priorities` set. The set changes when a priority is first used:
  // read again every minute, not every look (this process's own are known here at once).
  look[0] = true;
  const auto now = std::chrono::steady_clock::now();
  if (!priorities_read_ || now - *priorities_read_ > std::chrono::minutes(1)) {
    redis::request members("SMEMBERS", keys(options_.queue).priorities);
    auto in_use = redis::connection::single(co_await pool_.commands().exec(members));
    if (in_use && in_use->is_array()) {
      priorities_seen_ = {};
      for (const auto& m : in_use->elements())
        if (m.str().size() == 1 && m.str()[0] >= '0' && m.str()[0] <= '9')
          priorities_seen_[static_cast<std::size_t>(m.str()[0] - '0')] = true;
      priorities_read_ = now;
    } else {
      priorities_seen_.fill(true); // not known: every stream
    }
  }
  for (std::size_t p = 0; p < look.size(); ++p)
    look[p] = look[p] || priorities_seen_[p] || noted_priorities_[p];
  co_return look;
}

asio::awaitable<void>
consumer::rerun_stalled(const std::vector<std::pair<std::string, const redis::reply*>>& found) {
  redis::request deliveries; // how often each was delivered: the stall count
  for (const auto& [stream, entry] : found) {
    auto id = entry->elements()[0].str();
    deliveries.push("XPENDING", stream, group, id, id, "1");
  }
  auto counts = co_await pool_.commands().exec(deliveries);
  // Which of them were cancelled meanwhile: those end cancelled here and never run again.
  std::vector<std::variant<delivered_job, std::string>> parsed_all;
  std::vector<std::string_view> mark_args;
  const keys k(options_.queue);
  mark_args.push_back(k.cancel);
  parsed_all.reserve(found.size());
  for (const auto& [stream, entry] : found)
    parsed_all.push_back(parse_entry(options_.queue, stream, priority_of(stream), *entry));
  // (Views into the jobs' ids, taken once the vector no longer grows.)
  for (const auto& p : parsed_all)
    if (auto* j = std::get_if<delivered_job>(&p)) mark_args.push_back(j->id);
  std::set<std::string, std::less<>> marked;
  if (mark_args.size() > 1) {
    redis::request marks;
    marks.push_range("HMGET", mark_args);
    auto m = redis::connection::single(co_await pool_.commands().exec(marks));
    if (m && m->is_array())
      for (std::size_t i = 0; i < m->elements().size() && i + 1 < mark_args.size(); ++i)
        if (m->elements()[i].is_string()) marked.emplace(mark_args[i + 1]);
  }
  for (std::size_t i = 0; i < found.size(); ++i) {
    long long delivered = 2;
    if (counts && (*counts)[i].is_array() && !(*counts)[i].elements().empty()) {
      const auto& row = (*counts)[i].elements()[0];
      if (row.elements().size() == 4) delivered = row.elements()[3].as_integer().value_or(2);
    }
    auto stalls = static_cast<int>(delivered - 1);
    const auto& [stream, entry] = found[i];
    auto& parsed = parsed_all[i];
    auto* job = std::get_if<delivered_job>(&parsed);
    if (!job) { // never fetched again by XREADGROUP >: it must go dead here
      co_await bury_malformed(stream, priority_of(stream), *entry, std::get<std::string>(parsed));
      continue;
    }
    if (stopping_) continue; // stays pending: recovered again after a lease, by whoever runs
    ++stats_.recovered;
    if (marked.count(job->id)) {
      co_await fail(*job, job->attempt + 1, true, "cancelled while its worker was gone",
                    std::nullopt, true);
      continue;
    }
    spdlog::warn("job {} of queue {} stalled (lease of {} ms expired, {} time{}); {}", job->id,
                 options_.queue, options_.lease.count(), stalls, stalls == 1 ? "" : "s",
                 stalls > options_.max_stalls ? "giving up" : "running it again");
    if (stalls > options_.max_stalls) {
      co_await fail(*job, job->attempt + 1, true, "stalled " + std::to_string(stalls) + " times",
                    std::nullopt);
      continue;
    }
    job->stalls = stalls;
    if (events_max_ > 0) note_event("stalled", job->id, {"stalls", std::to_string(stalls)});
    start(std::move(*job));
  }
  redis::request count("HINCRBY", keys(options_.queue).stats, "stalled",
                       std::to_string(found.size()));
  co_await pool_.commands().exec(count);
}

} // namespace forq::queue
