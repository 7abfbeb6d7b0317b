// The consumer (consumer.hpp): its life (run, stop) and fetching: exact or blocking reads by
// priority, rate permits, slot shares, pause, hand-backs.
#include "queue/consumer.hpp"

#include "consumer_detail.hpp"
#include "fetch_plan.hpp"
#include "forq/queue/producer.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unistd.h>

namespace forq::queue {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using namespace detail;

consumer::consumer(redis::pool& pool, consumer_options options, handler_map handlers)
    : pool_(pool)
    , options_(std::move(options))
    , handlers_(std::move(handlers))
    , name_(options_.name.empty() ? host_and_pid() : options_.name)
    , rng_(std::random_device{}())
    , slot_free_(pool.commands().executor())
    , ack_due_(pool.commands().executor())
    , promote_due_(pool.commands().executor())
    , lease_due_(pool.commands().executor())
    , renew_due_(pool.commands().executor())
    , tidy_due_(pool.commands().executor())
    , unblock_due_(pool.commands().executor())
    , schedule_due_(pool.commands().executor())
    , progress_due_(pool.commands().executor())
    , deadline_due_(pool.commands().executor())
    , cancel_due_(pool.commands().executor()) {
  if (options_.share) member_ = options_.share->join(options_.weight, slot_free_);
}

void consumer::keeper_vacant() {
  if (!stopping_ && !fetching_done_) schedule_due_.cancel();
}

void consumer::stop() {
  if (!stopping_ && options_.release_keeper) options_.release_keeper();
  stopping_ = true;
  slot_free_.cancel();
  ack_due_.cancel();
  promote_due_.cancel();
  lease_due_.cancel();
  renew_due_.cancel();
  tidy_due_.cancel();
  unblock_due_.cancel();
  schedule_due_.cancel();
  progress_due_.cancel();
  deadline_due_.cancel();
  cancel_due_.cancel();
}

asio::awaitable<void> consumer::unblock_loop() {
  while (!stopping_ && !fetching_done_)
    co_await wait(unblock_due_);
  auto& conn = pool_.blocking(options_.blocking_connection);
  const auto since = std::chrono::steady_clock::now();
  while (!fetching_done_) {
    if (waiting_in_redis_) {
      // The wait returns nothing, as at its timeout. 0: not blocked yet (the fetch is still on
      // its way, on another connection): again shortly.
      // (Only on a command connection that is up: a request would wait for one without end.)
      bool unblocked = false;
      if (auto id = conn.client_id(); id != 0 && pool_.commands().ready()) {
        redis::request req("CLIENT", "UNBLOCK", std::to_string(id));
        redis::exec_options o; // cluster: to the primary that holds the queue, where it waits
        const auto queue_key = keys::stream_key(options_.queue, 0);
        o.route = queue_key;
        auto r = redis::connection::single(co_await pool_.commands().exec(req, o));
        unblocked = r && r->as_integer().value_or(0) == 1;
      }
      // No id, or CLIENT UNBLOCK refused (an ACL): what the wait brings now stays leased
      // until stall recovery.
      if (!unblocked && std::chrono::steady_clock::now() - since > std::chrono::seconds(1))
        conn.drop("stopping: the blocking fetch could not be ended with CLIENT UNBLOCK");
    }
    co_await pause_for(milliseconds(50));
  }
}

asio::awaitable<std::size_t> consumer::release_running() {
  std::set<std::string> unacked; // outcome known, ack pending: not handed back
  for (const auto& f : to_ack_)
    unacked.insert(f.entry_id);
  std::vector<delivered_job> running;
  for (const auto& [stream, ids] : active_)
    for (const auto& id : ids)
      if (!unacked.count(id)) {
        delivered_job j;
        j.stream = stream;
        j.entry_id = id;
        running.push_back(std::move(j));
        released_.insert(id);
      }
  // Their handlers are told (the process leaves): an exec command gets SIGTERM.
  for (auto& a : running_list_)
    if (released_.count(a.job->entry_id))
      a.cancel("the worker is leaving (its drain timeout passed): the job was handed back");
  auto before = stats_.handed_back;
  if (!running.empty()) co_await hand_back(std::move(running));
  co_return static_cast<std::size_t>(stats_.handed_back - before);
}

asio::awaitable<error_code> consumer::run() {
  if (auto ec = co_await start_queue(pool_.commands(), options_.queue)) co_return ec;
  started_ = true;
  co_await (fetch_loop() && ack_loop() && promote_loop() && renew_loop() && stall_loop() &&
            tidy_loop() && unblock_loop() && schedule_loop() && progress_loop() &&
            deadline_loop() && cancel_loop());
  // Attempts started while the loops wound down may have finished after ack_loop ended.
  if (!to_ack_.empty()) co_await ack_loop();
  if (!events_out_.empty()) co_await send_events();
  if (!settled_streams_.empty()) co_await tidy(); // a stopped consumer leaves its streams tidy
  co_return error_code{};
}

asio::awaitable<std::vector<delivered_job>> consumer::take(const redis::reply& answer) {
  std::vector<delivered_job> got;
  int streams_with_jobs = 0;
  keys k(options_.queue);
  for (const auto& s : answer.elements()) {
    if (s.elements().size() != 2) continue;
    std::string stream(s.elements()[0].str());
    if (stream == k.wake) { // a delayed job was enqueued: promote on its time, and ack the bell
      std::vector<std::string_view> args;
      args.push_back(k.wake);
      args.push_back(group);
      for (const auto& e : s.elements()[1].elements())
        if (e.is_array() && !e.elements().empty()) args.push_back(e.elements()[0].str());
      redis::request ack;
      ack.push_range("XACK", args);
      co_await pool_.commands().exec(ack);
      promote_due_.cancel();
      continue;
    }
    int priority = priority_of(stream);
    if (!s.elements()[1].elements().empty()) ++streams_with_jobs;
    for (const auto& e : s.elements()[1].elements()) {
      ++stats_.fetched;
      auto parsed = parse_entry(options_.queue, stream, priority, e);
      if (auto* why = std::get_if<std::string>(&parsed)) {
        co_await bury_malformed(stream, priority, e, *why);
        continue;
      }
      got.push_back(std::move(std::get<delivered_job>(parsed)));
    }
  }
  // Several priorities have jobs at once: fetch exactly, by priority, for a while.
  if (streams_with_jobs > 1)
    exact_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  co_await note_priorities(got);
  co_return got;
}

void consumer::keep(std::vector<delivered_job> got) {
  for (auto& j : got) {
    active_[j.stream].insert(j.entry_id); // leased (and renewed) from now on
    auto at = std::find_if(waiting_.begin(), waiting_.end(),
                           [&](const delivered_job& w) { return w.priority < j.priority; });
    waiting_.insert(at, std::move(j));
  }
}

fetch_view consumer::fetch_now() const {
  const auto now = std::chrono::steady_clock::now();
  fetch_view v;
  v.stopping = stopping_;
  v.waiting = waiting_.size();
  v.waiting_priority = waiting_.empty() ? 0 : waiting_.front().priority;
  v.room = room();
  v.paused = paused_;
  v.pause_look_due = now - paused_checked_ > options_.pause_check_every;
  v.idle = idle_;
  v.exact = now < exact_until_;
  v.rate_limited = rate_max_ > 0;
  v.last_full = last_full_;
  return v;
}

// Fills exactly `count` slots from the first n_streams priority streams, highest first (one
// script call: XREADGROUP's COUNT is per stream, so one call over all would over-fetch and take
// low priorities as eagerly as high ones).
asio::awaitable<boost::system::result<redis::reply>> consumer::fetch_exactly(std::size_t n_streams,
                                                                             std::size_t count) {
  std::vector<std::string_view> some(
      stream_names_.begin(), stream_names_.begin() + static_cast<std::ptrdiff_t>(n_streams));
  std::vector<std::string> script_args;
  script_args.push_back(group);
  script_args.push_back(name_);
  script_args.push_back(std::to_string(count));
  std::vector<std::string_view> args(script_args.begin(), script_args.end());
  co_return co_await redis::eval(pool_.commands(), detail::scripts().fetch, some, args);
}

// The decisions are plan_fetch's (fetch_plan.hpp); this carries them out.
asio::awaitable<void> consumer::fetch_loop() {
  keys k(options_.queue);
  const auto all = k.streams();
  stream_names_.assign(all.rbegin(), all.rend()); // highest priority first
  stream_names_.push_back(k.wake); // the doorbell: read by the XREADGROUP, not fetch.lua
  using kind = fetch_step::kind;
  for (bool go_on = true; go_on;) {
    const auto step = plan_fetch(fetch_now());
    switch (step.what) {
    case kind::stop:
      go_on = false;
      break;
    case kind::look_at_pause:
      co_await refresh_paused();
      break;
    case kind::hand_back_waiting: {
      std::vector<delivered_job> back(std::make_move_iterator(waiting_.begin()),
                                      std::make_move_iterator(waiting_.end()));
      waiting_.clear();
      co_await hand_back(std::move(back));
      break;
    }
    case kind::start_waiting:
      if (step.higher_streams > 0) {
        auto r = co_await fetch_exactly(step.higher_streams, room());
        if (r && !r->is_error()) keep(co_await take(*r));
      }
      // As many as were free when that was asked: an attempt can end within start() (a
      // handler that never suspends), and the next one must be weighed against Redis again.
      for (auto n = room(); n > 0 && !waiting_.empty(); --n) {
        start(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      break;
    case kind::wait_for_slot:
      if (options_.share) options_.share->hungry(member_, step.hungry);
      co_await wait(slot_free_);
      break;
    case kind::wait_paused:
      if (options_.share) options_.share->hungry(member_, false);
      co_await wait_for_resume();
      break;
    case kind::fetch:
      go_on = co_await read_jobs();
      break;
    }
  }
  // Fetched but never started: back to the queue for others, at once.
  if (!waiting_.empty()) {
    std::vector<delivered_job> rest(std::make_move_iterator(waiting_.begin()),
                                    std::make_move_iterator(waiting_.end()));
    waiting_.clear();
    co_await hand_back(std::move(rest));
  }
  fetching_done_ = true;
  ack_due_.cancel();
  promote_due_.cancel();
  lease_due_.cancel();
  renew_due_.cancel();
  tidy_due_.cancel();
  unblock_due_.cancel();
  schedule_due_.cancel();
  progress_due_.cancel();
  deadline_due_.cancel();
  cancel_due_.cancel();
}

asio::awaitable<bool> consumer::read_jobs() {
  // The rate limit's permits (all of them when the queue has none).
  auto [allowed, wait_ms] = co_await permits(room());
  if (allowed == 0) {
    if (options_.share) options_.share->hungry(member_, false);
    if (stopping_) co_return true; // stop() came while we asked: its wake-up is spent
    slot_free_.expires_after(std::max(wait_ms, milliseconds(1)));
    co_await slot_free_.async_wait(use_tuple);
    co_return true;
  }
  const auto plan = plan_read(fetch_now(), allowed, options_.share != nullptr);
  const auto asked = std::chrono::steady_clock::now();
  boost::system::result<redis::reply> r = redis::reply{};
  bool fetched_some = false;
  if (plan.exact_first) {
    r = co_await fetch_exactly(stream_names_.size() - 1, allowed);
    fetched_some = r && !r->is_error() && !r->elements().empty();
  }
  bool permits_returned = false;
  if (plan.give_back_if_empty && !fetched_some && (!r || !r->is_error())) {
    co_await give_back(allowed);
    permits_returned = true;
  }
  if (!fetched_some && (!r || !r->is_error())) {
    // One XREADGROUP over every priority's stream and the doorbell: it returns at once with up
    // to COUNT entries of each stream that has any, or waits inside Redis for the next job (no
    // polling). Holding slots (plan.block false), it does not wait.
    auto req = read_request(plan.count, plan.block);
    if (!plan.block) options_.share->reserve(member_, allowed);
    waiting_in_redis_ = plan.block;
    r = redis::connection::single(co_await pool_.blocking(options_.blocking_connection)
                                      .exec(req, plan.block ? options_.block : milliseconds(0)));
    waiting_in_redis_ = false;
    if (!plan.block) options_.share->release(member_, allowed);
    if (r && r->is_nil()) {
      idle_ = true;
      last_full_ = false;
      if (options_.share) options_.share->hungry(member_, false); // its queue is empty
      if (!permits_returned) co_await give_back(allowed);
      co_return true; // nothing within `block`
    }
  }
  if (permits_returned) allowed = 0; // the jobs the wait brought need permits of their own
  if (!r) {
    co_await give_back(allowed);
    if (r.error() == errc::redis_shutdown) co_return false;
    co_await pause_for(milliseconds(100)); // the connection is reconnecting by itself
    co_return true;
  }
  if (r->is_error()) {
    co_await give_back(allowed);
    co_await on_error_reply("fetching from", *r);
    co_return true;
  }
  auto got = co_await take(*r);
  if (permits_returned && !got.empty()) allowed = (co_await permits(got.size())).first;
  co_await settle_fetched(std::move(got), allowed, asked);
  co_return true;
}

redis::request consumer::read_request(std::size_t count, bool block) const {
  const auto count_text = std::to_string(count);
  const auto block_text = std::to_string(options_.block.count());
  std::vector<std::string_view> args;
  args.push_back("GROUP");
  args.push_back(group);
  args.push_back(name_);
  args.push_back("COUNT");
  args.push_back(count_text);
  if (block) {
    args.push_back("BLOCK");
    args.push_back(block_text);
  }
  args.push_back("STREAMS");
  for (const auto& key : stream_names_)
    args.push_back(key);
  for (std::size_t i = 0; i < stream_names_.size(); ++i)
    args.push_back(">");
  redis::request req;
  req.push_range("XREADGROUP", args); // copies the arguments
  return req;
}

asio::awaitable<void> consumer::settle_fetched(std::vector<delivered_job> got, std::size_t allowed,
                                               std::chrono::steady_clock::time_point asked) {
  const auto settled = settle_read(got.size(), allowed, rate_max_ > 0);
  last_full_ = settled.full;
  if (options_.share) options_.share->hungry(member_, last_full_);
  if (settled.hand_back > 0) {
    std::vector<delivered_job> extra(
        std::make_move_iterator(got.begin() + static_cast<std::ptrdiff_t>(settled.keep)),
        std::make_move_iterator(got.end()));
    got.resize(settled.keep);
    co_await hand_back(std::move(extra));
  }
  if (settled.give_back > 0) co_await give_back(settled.give_back);
  // A fetch that waited inside Redis may have outlived a pause, and one after idle waits had no
  // look before it: look again before running anything (one HMGET, only for fetches that
  // blocked or came after idling).
  const bool after_idle = idle_ || std::chrono::steady_clock::now() - asked > milliseconds(10);
  // Only the doorbell (a delayed job, a change of meta): still idle, and the jobs the next
  // fetch brings get their look.
  idle_ = got.empty() && after_idle;
  if (!got.empty() && after_idle &&
      std::chrono::steady_clock::now() - paused_checked_ > milliseconds(10) &&
      co_await refresh_paused()) {
    co_await hand_back(std::move(got));
    co_return;
  }
  keep(std::move(got));
}

asio::awaitable<bool> consumer::refresh_paused() {
  keys k(options_.queue);
  redis::request req("HMGET", k.meta, "schema", "paused", "rate_max", "rate_ms", "events");
  auto r = redis::connection::single(co_await pool_.commands().exec(req));
  if (r && r->is_array() && r->elements().size() == 5 && r->elements()[0].is_nil()) {
    co_await heal(); // no schema: the queue's keys are gone (flushed, restarted empty, ...)
    co_return paused_;
  }
  if (r && r->is_array() && r->elements().size() == 5) {
    const auto* v = r->elements().data() + 1; // paused, rate_max, rate_ms, events
    events_max_ = std::max<std::int64_t>(0, v[3].as_integer().value_or(0));
    bool now_paused = v[0].str() == "1";
    if (now_paused != paused_)
      spdlog::info("queue {} {}", options_.queue, now_paused ? "is paused" : "is resumed");
    paused_ = now_paused;
    auto max = v[1].as_integer().value_or(0), ms = v[2].as_integer().value_or(0);
    if (max <= 0 || ms <= 0) max = ms = 0;
    if (max != rate_max_ || ms != rate_ms_) {
      if (max > 0)
        spdlog::info("queue {} is limited to {} jobs per {} ms", options_.queue, max, ms);
      else if (rate_max_ > 0)
        spdlog::info("queue {} is no longer rate limited", options_.queue);
    }
    rate_max_ = max;
    rate_ms_ = ms;
    paused_checked_ = std::chrono::steady_clock::now();
  }
  co_return paused_;
}

asio::awaitable<void> consumer::wait_for_resume() {
  keys k(options_.queue);
  // The doorbell's last entry first, then the look: a resume after the look rings after it.
  redis::request last("XREVRANGE", k.wake, "+", "-", "COUNT", "1");
  auto r = redis::connection::single(co_await pool_.commands().exec(last));
  std::string after = "0-0";
  if (r && r->is_array() && !r->elements().empty() && r->elements()[0].is_array() &&
      !r->elements()[0].elements().empty())
    after = std::string(r->elements()[0].elements()[0].str());
  if (!co_await refresh_paused() || stopping_) co_return;
  if (!r) { // Redis is away: the connection says so; look again in a while
    slot_free_.expires_after(options_.pause_check_every);
    co_await slot_free_.async_wait(use_tuple);
    co_return;
  }
  const auto wait = std::to_string(options_.paused_wait.count());
  redis::request bell("XREAD", "COUNT", "1", "BLOCK", wait, "STREAMS", k.wake, after);
  waiting_in_redis_ = true;
  co_await pool_.blocking(options_.blocking_connection).exec(bell, options_.paused_wait);
  waiting_in_redis_ = false;
  paused_checked_ = {}; // rung, or waited out: look again before anything else
}

std::size_t consumer::room() const {
  if (options_.share) return options_.share->room(member_);
  return running_ < options_.concurrency ? options_.concurrency - running_ : 0;
}

asio::awaitable<boost::system::result<redis::reply>> consumer::rate_call(std::string_view op,
                                                                         std::size_t n) {
  keys k(options_.queue);
  std::vector<std::string_view> keys_v, args;
  keys_v.push_back(k.rate);
  auto max = std::to_string(rate_max_), ms = std::to_string(rate_ms_), count = std::to_string(n);
  args.push_back(max);
  args.push_back(ms);
  args.push_back(op);
  args.push_back(count);
  args.push_back(rate_window_); // give: only to the window they were taken from
  co_return co_await redis::eval(pool_.commands(), detail::scripts().rate, keys_v, args);
}

asio::awaitable<std::pair<std::size_t, milliseconds>> consumer::permits(std::size_t want) {
  if (rate_max_ == 0 || want == 0) co_return std::make_pair(want, milliseconds(0));
  auto r = co_await rate_call("take", want);
  if (!r || !r->is_array() || r->elements().size() != 3)
    co_return std::make_pair(std::size_t{0}, milliseconds(100)); // Redis trouble: wait a little
  auto granted = static_cast<std::size_t>(r->elements()[0].as_integer().value_or(0));
  if (r->elements().size() == 3) rate_window_ = std::string(r->elements()[2].str());
  co_return std::make_pair(granted, milliseconds(r->elements()[1].as_integer().value_or(100)));
}

asio::awaitable<void> consumer::give_back(std::size_t unused) {
  if (rate_max_ == 0 || unused == 0) co_return;
  co_await rate_call("give", unused);
}

asio::awaitable<void> consumer::hand_back(std::vector<delivered_job> jobs) {
  std::map<std::string, std::vector<std::string>> by_stream;
  for (const auto& j : jobs)
    by_stream[j.stream].push_back(j.entry_id);
  const keys k(options_.queue);
  const auto& entries = k.entries;
  const auto& cancel_key = k.cancel;
  for (const auto& [stream, ids] : by_stream) {
    std::vector<std::string_view> keys_v, args;
    keys_v.push_back(stream);
    keys_v.push_back(entries);
    keys_v.push_back(cancel_key);
    args.push_back(group);
    args.push_back(name_);
    for (const auto& id : ids)
      args.push_back(id);
    auto r = co_await redis::eval(pool_.commands(), detail::scripts().handback, keys_v, args);
    if (r && !r->is_error()) {
      stats_.handed_back += static_cast<std::uint64_t>(r->as_integer().value_or(0));
    } else if (r && r->is_nogroup()) {
      co_await heal(); // the entries went with the queue's keys: nothing to hand back
    } else {
      // Still pending here: stall recovery brings them back after a lease.
      spdlog::warn("handing {} jobs of queue {} back failed ({}); they return after a lease",
                   ids.size(), options_.queue, r ? std::string(r->str()) : r.error().message());
    }
    for (const auto& id : ids)
      active_[stream].erase(id);
  }
}

asio::awaitable<void> consumer::bury_malformed(const std::string& stream, int priority,
                                               const redis::reply& entry, const std::string& why) {
  // A foreign producer's mistake: dead with the reason, and the queue moves on.
  delivered_job raw;
  raw.queue = options_.queue;
  raw.stream = stream;
  raw.priority = priority;
  if (entry.is_array() && entry.elements().size() == 2) {
    raw.entry_id = raw.id = entry.elements()[0].str();
    const auto& kv = entry.elements()[1].elements();
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
      raw.fields.emplace_back(kv[i].str(), kv[i + 1].str());
  }
  if (raw.entry_id.empty()) co_return;
  raw.id = first_attempt_id(raw.entry_id, priority);
  co_await fail(raw, 1, true, "malformed job: " + why, std::nullopt);
}

} // namespace forq::queue

namespace forq::queue::detail {

std::string now_ms(milliseconds plus) {
  auto t = std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()) +
           plus;
  return std::to_string(t.count());
}

int priority_of(std::string_view stream) {
  auto p = stream.rfind(":p");
  if (p == std::string_view::npos || p + 3 != stream.size()) return 0;
  char c = stream[p + 2];
  return c >= '1' && c <= '9' ? c - '0' : 0;
}

std::string host_and_pid() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

asio::awaitable<void> wait(asio::steady_timer& t) {
  t.expires_at(asio::steady_timer::time_point::max());
  co_await t.async_wait(use_tuple);
}

asio::awaitable<void> pause_for(milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

// results:data's value for a finished job (docs/protocol.md): the handler's result as JSON
// (text that is not JSON is kept as a JSON string, made valid UTF-8), the runs it took, and
// when it finished. Empty for a job that returned nothing (null) in one run, the common case:
// its end is recorded in the results index only, which means one run.
std::string result_record(const std::string& result, int attempt) {
  const bool nothing = result == "null" || result.empty();
  if (nothing && attempt == 1) return {};
  if (nothing)
    return "{\"result\":null,\"attempt\":" + std::to_string(attempt) +
           ",\"finished_ms\":" + now_ms() + "}";
  std::string out = "{\"result\":";
  out += check_json(result) ? serialize_utf8(boost::json::value(result)) : result;
  out += ",\"attempt\":" + std::to_string(attempt) + ",\"finished_ms\":" + now_ms() + "}";
  return out;
}

} // namespace forq::queue::detail
