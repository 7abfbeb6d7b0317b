// The keeper's look at a queue's schedules (docs/schedules.md): every slot due by Redis's clock
// claimed through schedule_claim.lua, as the schedule's missed-run and overlap policies say.
#include "forq/client.hpp"
#include "queue/protocol.hpp"
#include "queue/scripts.hpp"
#include "redis/script.hpp"
#include "schedule/detail.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace forq::schedule {
using detail::schedule_keys;
using detail::to_int;
namespace {

using std::chrono::milliseconds;

constexpr std::size_t most_missed = 100; // missed = all: at most this many slots run late
// A slot's job marker lives two intervals, between an hour and a week: long enough for `forq job`
// to find the job by its id, short enough that a schedule every second keeps some thousands.
std::string marker_ttl(std::int64_t slot, std::optional<std::int64_t> next) {
  const std::int64_t interval_s = next ? (*next - slot) / 1000 : 604800;
  return std::to_string(std::clamp<std::int64_t>(2 * interval_s, 3600, 604800));
}

} // namespace

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
