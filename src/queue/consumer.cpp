#include "forq/queue/consumer.hpp"

#include "forq/queue/producer.hpp"
#include "scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

namespace forq::queue {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
const std::string group = "workers";

std::string now_ms(milliseconds plus = milliseconds(0)) {
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

} // namespace

consumer::consumer(redis::pool& pool, consumer_options options, handler_map handlers)
    : pool_(pool)
    , options_(std::move(options))
    , handlers_(std::move(handlers))
    , name_(options_.name.empty() ? host_and_pid() : options_.name)
    , rng_(std::random_device{}())
    , slot_free_(pool.commands().executor())
    , ack_due_(pool.commands().executor())
    , promote_due_(pool.commands().executor())
    , lease_due_(pool.commands().executor()) {}

void consumer::stop() {
  stopping_ = true;
  slot_free_.cancel();
  ack_due_.cancel();
  promote_due_.cancel();
  lease_due_.cancel();
}

asio::awaitable<error_code> consumer::run() {
  if (auto ec = co_await init_queue(pool_.commands(), options_.queue)) co_return ec;
  co_await (fetch_loop() && ack_loop() && promote_loop() && lease_loop());
  // Attempts started while the loops wound down may have finished after ack_loop ended.
  if (!to_ack_.empty()) co_await ack_loop();
  co_return error_code{};
}

asio::awaitable<void> consumer::fetch_loop() {
  keys k(options_.queue);
  auto ex = co_await asio::this_coro::executor;
  auto& conn = pool_.blocking(0);
  std::vector<std::string> stream_names; // highest priority first
  for (int p = 9; p >= 0; --p)
    stream_names.push_back(k.stream_for(p));
  std::vector<std::string_view> streams(stream_names.begin(), stream_names.end());
  while (!stopping_) {
    if (running_ >= options_.concurrency) {
      co_await wait(slot_free_);
      continue;
    }
    // First the exact number of free slots, highest priority first, without waiting (one
    // script call); only when nothing is ready, wait inside Redis for the next job. That wait
    // takes at most one entry per priority, so it can start up to 9 attempts beyond
    // `concurrency`, once, when an idle consumer wakes.
    auto free_slots = std::to_string(options_.concurrency - running_);
    std::vector<std::string_view> script_args;
    script_args.push_back(group);
    script_args.push_back(name_);
    script_args.push_back(free_slots);
    auto fetched =
        co_await redis::eval(pool_.commands(), detail::scripts().fetch, streams, script_args);
    boost::system::result<redis::reply> r = std::move(fetched);
    if (r && !r->is_error() && r->elements().empty()) {
      redis::request req;
      std::vector<std::string> args;
      // (No braced lists inside these coroutines: GCC 12 miscompiles them.)
      args.emplace_back("GROUP");
      args.push_back(group);
      args.push_back(name_);
      args.emplace_back("COUNT");
      args.emplace_back("1");
      args.emplace_back("BLOCK");
      args.push_back(std::to_string(options_.block.count()));
      args.emplace_back("STREAMS");
      for (const auto& key : stream_names)
        args.push_back(key);
      for (std::size_t i = 0; i < stream_names.size(); ++i)
        args.emplace_back(">");
      req.push_range("XREADGROUP", args);
      r = redis::connection::single(co_await conn.exec(req, options_.block));
      if (r && r->is_nil()) continue; // nothing within `block`
    }
    if (!r) {
      if (r.error() == errc::redis_shutdown) break;
      co_await pause_for(milliseconds(100)); // the connection is reconnecting by itself
      continue;
    }
    const auto& answer = *r;
    if (answer.is_error()) {
      spdlog::error("fetching from queue {} failed: {}", options_.queue, answer.str());
      co_await pause_for(milliseconds(1000));
      continue;
    }
    for (const auto& s : answer.elements()) {
      if (s.elements().size() != 2) continue;
      std::string stream(s.elements()[0].str());
      int priority = priority_of(stream);
      for (const auto& e : s.elements()[1].elements()) {
        ++stats_.fetched;
        auto parsed = parse_entry(options_.queue, stream, priority, e);
        if (auto* why = std::get_if<std::string>(&parsed)) {
          co_await bury_malformed(stream, priority, e, *why);
          continue;
        }
        ++running_;
        asio::co_spawn(ex, attempt(std::move(std::get<delivered_job>(parsed))), asio::detached);
      }
    }
  }
  fetching_done_ = true;
  ack_due_.cancel();
  promote_due_.cancel();
  lease_due_.cancel();
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
  co_await fail(raw, 1, true, "malformed job: " + why, std::nullopt);
}

asio::awaitable<void> consumer::attempt(delivered_job job) {
  active_[job.stream].insert(job.entry_id); // its lease is renewed from now until it ends
  outcome out;
  auto h = handlers_.find(job.handler);
  if (h == handlers_.end()) {
    out = outcome::failure("unknown handler \"" + job.handler + "\"");
  } else {
    try {
      out = co_await h->second(job);
    } catch (const std::exception& e) {
      out = outcome::retry_later(std::string("the handler threw: ") + e.what());
    } catch (...) {
      out = outcome::retry_later("the handler threw something that is not a std::exception");
    }
  }
  // The lease stays renewed until the outcome is recorded: ack_loop, or fail() below, lets go.
  if (out.what == outcome::kind::done) {
    finished f;
    f.stream = job.stream;
    f.entry_id = job.entry_id;
    f.id = job.id;
    f.result = std::move(out.text);
    to_ack_.push_back(std::move(f));
  } else {
    co_await fail(job, job.attempt + 1, out.what == outcome::kind::fail, out.text, out.retry_after);
    active_[job.stream].erase(job.entry_id);
  }
  --running_;
  slot_free_.cancel();
  ack_due_.cancel();
  if (stopping_ && running_ == 0) { // the last one out: the loops may end
    promote_due_.cancel();
    lease_due_.cancel();
  }
}

asio::awaitable<void> consumer::ack_loop() {
  keys k(options_.queue);
  auto keep_ms = std::to_string(options_.keep_results.count());
  auto keep_max = std::to_string(options_.max_results);
  for (;;) {
    if (to_ack_.empty()) {
      if (stopping_ && fetching_done_ && running_ == 0) break;
      co_await wait(ack_due_);
      continue;
    }
    // Everything finished since the last ack: one script call per stream, 1,000 at most each
    // (Lua's unpack() limit).
    std::map<std::string, std::vector<finished>> by_stream;
    for (std::size_t n = 0; n < 1000 && !to_ack_.empty(); ++n) {
      by_stream[to_ack_.front().stream].push_back(std::move(to_ack_.front()));
      to_ack_.pop_front();
    }
    bool gave_up = false;
    for (auto& [stream, batch] : by_stream) {
      if (batch.empty()) continue;
      std::vector<std::string_view> keys_v, args;
      keys_v.push_back(stream);
      keys_v.push_back(k.results);
      keys_v.push_back(k.results_data);
      keys_v.push_back(k.stats);
      auto now = now_ms();
      args.push_back(group);
      args.push_back(now);
      args.push_back(keep_ms);
      args.push_back(keep_max);
      for (const auto& f : batch) {
        args.push_back(f.entry_id);
        args.push_back(f.id);
        args.push_back(f.result);
      }
      auto r = co_await redis::eval(pool_.commands(), detail::scripts().ack, keys_v, args);
      if (!r && r.error() == errc::redis_shutdown) {
        // The pool is stopping: these stay pending and come back through stall recovery.
        gave_up = true;
        break;
      }
      if (!r || r->is_error()) {
        // Acks repeat safely (XACK of an acked entry is a no-op): put every batch not yet
        // acknowledged back, and try again shortly.
        spdlog::warn("acknowledging {} jobs of queue {} failed ({}); retrying", batch.size(),
                     options_.queue, r ? std::string(r->str()) : r.error().message());
        for (auto& [s2, b2] : by_stream)
          for (auto& f : b2)
            to_ack_.push_back(std::move(f));
        co_await pause_for(milliseconds(100));
        break;
      }
      stats_.done += batch.size();
      for (const auto& f : batch)
        active_[f.stream].erase(f.entry_id);
      batch.clear();
    }
    if (gave_up) break;
  }
}

asio::awaitable<void> consumer::fail(const delivered_job& job, int attempt_made, bool permanent,
                                     const std::string& error,
                                     std::optional<milliseconds> retry_after) {
  auto policy = options_.retry;
  if (job.max_attempts) policy.max_attempts = *job.max_attempts;
  auto v = decide(policy, attempt_made, permanent, error, retry_after, rng_);
  keys k(options_.queue);
  std::vector<std::pair<std::string, std::string>> extra;
  extra.emplace_back("last_error", error);
  if (!v.retry) extra.emplace_back("reason", v.reason);
  auto json = to_json(job, attempt_made, extra);
  auto when = v.retry ? now_ms(v.delay) : now_ms();
  std::vector<std::string_view> keys_v, args;
  keys_v.push_back(job.stream);
  keys_v.push_back(k.delayed);
  keys_v.push_back(k.delayed_jobs);
  keys_v.push_back(k.dead);
  keys_v.push_back(k.dead_jobs);
  keys_v.push_back(k.stats);
  args.push_back(group);
  args.push_back(job.entry_id);
  args.push_back(job.id);
  args.push_back(v.retry ? "retry" : "dead");
  args.push_back(when);
  args.push_back(json);
  bool recorded = false;
  for (int tries = 0; tries < 50; ++tries) {
    auto r = co_await redis::eval(pool_.commands(), detail::scripts().fail, keys_v, args);
    if (r && !r->is_error()) {
      // 0: no longer pending, settled by whoever recovered it; nothing was written.
      recorded = r->as_integer().value_or(0) == 1;
      break;
    }
    if (!r && r.error() == errc::redis_shutdown) break;
    spdlog::warn("recording the failure of job {} of queue {} failed ({}); retrying", job.id,
                 options_.queue, r ? std::string(r->str()) : r.error().message());
    co_await pause_for(milliseconds(100));
  }
  // Not recorded: the job stays pending, and stall recovery brings it back.
  if (!recorded) co_return;
  if (v.retry) {
    ++stats_.retried;
    promote_due_.cancel(); // it may be due before the promoter's next look
  } else {
    ++stats_.dead;
    spdlog::warn("job {} of queue {} is dead: {}", job.id, options_.queue, v.reason);
  }
}

asio::awaitable<void> consumer::promote_loop() {
  keys k(options_.queue);
  std::vector<std::string> key_storage;
  key_storage.push_back(k.delayed);
  key_storage.push_back(k.delayed_jobs);
  for (int p = 0; p <= 9; ++p)
    key_storage.push_back(k.stream_for(p));
  key_storage.push_back(k.dead);
  key_storage.push_back(k.dead_jobs);
  std::vector<std::string_view> keys_v(key_storage.begin(), key_storage.end());
  const std::string limit = "100";
  while (!(stopping_ && fetching_done_ && running_ == 0)) {
    auto now = now_ms();
    std::vector<std::string_view> args;
    args.push_back(now);
    args.push_back(limit);
    auto r = co_await redis::eval(pool_.commands(), detail::scripts().promote, keys_v, args);
    milliseconds next(1000); // look at least once a second
    if (r && r->is_array() && r->elements().size() == 2) {
      auto promoted = r->elements()[0].as_integer().value_or(0);
      auto wait_ms = r->elements()[1].as_integer().value_or(-1);
      if (promoted == 100)
        next = milliseconds(0);
      else if (wait_ms >= 0)
        next = std::min(next, milliseconds(wait_ms));
    }
    promote_due_.expires_after(next);
    co_await promote_due_.async_wait(use_tuple);
  }
}

asio::awaitable<void> consumer::lease_loop() {
  while (!(stopping_ && fetching_done_ && running_ == 0)) {
    lease_due_.expires_after(options_.lease / 3);
    co_await lease_due_.async_wait(use_tuple);
    // Renew every lease this process holds, one XCLAIM per stream: min-idle 0 and JUSTID reset
    // the idle time without counting a delivery. A timer, so a busy handler cannot starve it.
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
    if (!stopping_) co_await recover_stalled();
  }
}

asio::awaitable<void> consumer::recover_stalled() {
  keys k(options_.queue);
  if (running_ >= options_.concurrency) co_return; // no room: others, or a later look, take them
  auto lease_ms = std::to_string(options_.lease.count());
  auto room = std::to_string(std::min<std::size_t>(100, options_.concurrency - running_));
  // Entries whose lease ran out, on every priority's stream, in one round trip. Each stream's
  // scan goes on from where the last one stopped (XAUTOCLAIM looks at COUNT x 10 entries a call).
  redis::request claim;
  std::vector<std::string> streams;
  for (int p = 9; p >= 0; --p) {
    streams.push_back(k.stream_for(p));
    auto& cursor = cursors_[streams.back()];
    if (cursor.empty()) cursor = "0-0";
    claim.push("XAUTOCLAIM", streams.back(), group, name_, lease_ms, cursor, "COUNT", room);
  }
  auto claimed = co_await pool_.commands().exec(claim);
  if (!claimed) co_return;
  struct stalled {
    std::string stream;
    const redis::reply* entry;
  };
  std::vector<stalled> found;
  redis::request deliveries; // how often each was delivered: the stall count
  for (std::size_t i = 0; i < streams.size(); ++i) {
    const auto& r = (*claimed)[i];
    if (!r.is_array() || r.elements().size() < 2) continue;
    cursors_[streams[i]] = std::string(r.elements()[0].str());
    for (const auto& e : r.elements()[1].elements()) {
      if (!e.is_array() || e.elements().size() != 2) continue;
      // One of this consumer's own attempts whose renewal failed: it is still running here.
      if (active_[streams[i]].count(std::string(e.elements()[0].str()))) continue;
      stalled one;
      one.stream = streams[i];
      one.entry = &e;
      found.push_back(one);
      deliveries.push("XPENDING", streams[i], group, e.elements()[0].str(), e.elements()[0].str(),
                      "1");
    }
  }
  if (found.empty()) co_return;
  auto counts = co_await pool_.commands().exec(deliveries);
  auto ex = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < found.size(); ++i) {
    long long delivered = 2;
    if (counts && (*counts)[i].is_array() && !(*counts)[i].elements().empty()) {
      const auto& row = (*counts)[i].elements()[0];
      if (row.elements().size() == 4) delivered = row.elements()[3].as_integer().value_or(2);
    }
    auto stalls = static_cast<int>(delivered - 1);
    const auto& stream = found[i].stream;
    auto parsed = parse_entry(options_.queue, stream, priority_of(stream), *found[i].entry);
    auto* job = std::get_if<delivered_job>(&parsed);
    if (!job) { // never fetched again by XREADGROUP >: it must go dead here
      co_await bury_malformed(stream, priority_of(stream), *found[i].entry,
                              std::get<std::string>(parsed));
      continue;
    }
    if (stopping_) continue; // stays pending: recovered again after a lease, by whoever runs
    ++stats_.recovered;
    spdlog::warn("job {} of queue {} stalled (lease of {} ms expired, {} time{}); {}", job->id,
                 options_.queue, options_.lease.count(), stalls, stalls == 1 ? "" : "s",
                 stalls > options_.max_stalls ? "giving up" : "running it again");
    if (stalls > options_.max_stalls) {
      co_await fail(*job, job->attempt + 1, true, "stalled " + std::to_string(stalls) + " times",
                    std::nullopt);
      continue;
    }
    ++running_;
    asio::co_spawn(ex, attempt(std::move(*job)), asio::detached);
  }
  redis::request count("HINCRBY", k.stats, "stalled", std::to_string(found.size()));
  co_await pool_.commands().exec(count);
}

} // namespace forq::queue
