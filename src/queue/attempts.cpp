// A consumer's attempts: running a handler, acknowledging in batches, failing into a retry or
// the dead set.
#include "consumer_detail.hpp"
#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "queue/verdict.hpp"
#include "scripts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace forq::queue {

using namespace detail; // asio, milliseconds, use_tuple, pause_for, ...

void consumer::histogram::add(std::chrono::microseconds d) {
  const double s = static_cast<double>(d.count()) / 1e6;
  std::size_t i = 0;
  while (i < bounds.size() && s > bounds[i])
    ++i;
  ++counts[i];
  sum_us += static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count()));
}

std::vector<consumer::running_job> consumer::running_jobs(std::size_t most) const {
  std::vector<running_job> out;
  for (const auto& a : running_list_) {
    if (out.size() >= most) break;
    out.push_back(running_job{a.job->id, a.started_ms});
  }
  return out;
}

asio::awaitable<void> consumer::attempt(delivered_job job) {
  active_[job.stream].insert(job.entry_id); // its lease is renewed from now until it ends
  {
    // The entry id's time is when this attempt became ready.
    std::int64_t ready_ms = 0;
    auto dash = job.entry_id.find('-');
    std::from_chars(job.entry_id.data(), job.entry_id.data() + dash, ready_ms);
    auto waited = std::chrono::system_clock::now().time_since_epoch() - milliseconds(ready_ms);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(waited);
    stats_.pickup.add(us);
    ++stats_.pickup_fine[history::bucket_of(us.count())];
  }
  const auto began = std::chrono::steady_clock::now();
  running_attempt me;
  me.job = &job;
  me.started_ms = epoch_ms();
  running_list_.push_back(me);
  outcome out;
  if (job.handler.empty()) job.handler = options_.default_handler;
  auto h = handlers_.find(job.handler);
  if (job.handler.empty()) {
    out = outcome::failure("the job names no handler and queue \"" + options_.queue +
                           "\" has no default handler");
  } else if (h == handlers_.end()) {
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
  stats_.run.add(std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - began));
  // The lease stays renewed until the outcome is recorded: ack_loop, or fail() below, lets go.
  if (released_.count(job.entry_id)) {
    // Handed back while it ran (the process is leaving): another consumer runs it; record
    // nothing here.
  } else if (out.what == outcome::kind::done) {
    finished f;
    f.stream = job.stream;
    f.entry_id = job.entry_id;
    f.id = job.id;
    f.record = result_record(out.text, job.attempt + 1 + job.stalls); // every run counts
    to_ack_.push_back(std::move(f));
  } else {
    co_await fail(job, job.attempt + 1, out.what == outcome::kind::fail, out.text, out.retry_after);
    active_[job.stream].erase(job.entry_id);
  }
  --running_;
  if (options_.share) options_.share->finished(member_);
  slot_free_.cancel();
  ack_due_.cancel();
  if (stopping_ && running_ == 0) { // the last one out: the loops may end
    promote_due_.cancel();
    lease_due_.cancel();
    tidy_due_.cancel();
  }
}

asio::awaitable<void> consumer::ack_loop() {
  for (;;) {
    if (to_ack_.empty()) {
      if (stopping_ && fetching_done_ && running_ == 0) break;
      co_await wait(ack_due_);
      continue;
    }
    // Everything finished since the last ack, in one round trip (1,000 jobs at most).
    std::vector<finished> batch;
    for (std::size_t n = 0; n < 1000 && !to_ack_.empty(); ++n) {
      batch.push_back(std::move(to_ack_.front()));
      to_ack_.pop_front();
    }
    const auto& durable = pool_.commands().options().durability;
    const auto sent = std::chrono::steady_clock::now();
    auto r = co_await pool_.commands().exec(
        ack_request(batch), durable.replicas > 0 ? durable.timeout : milliseconds(0));
    stats_.round_trip.add(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - sent));
    if (!r && r.error() == errc::redis_shutdown) break; // these stay pending: stall recovery
    const redis::reply* refused = nullptr;
    if (r)
      for (const auto& one : *r)
        if (one.is_error()) refused = &one;
    if (!r || refused) {
      // Acks repeat safely (XACK of an acked entry is a no-op): put the batch back, retry soon.
      for (auto& f : batch)
        to_ack_.push_back(std::move(f));
      if (refused) {
        co_await on_error_reply("acknowledging jobs of", *refused);
        continue;
      }
      spdlog::warn("acknowledging {} jobs of queue {} failed ({}); retrying", batch.size(),
                   options_.queue, r.error().message());
      co_await pause_for(milliseconds(100));
      continue;
    }
    acked(batch, *r);
  }
}

// The results (one HSET), their index (one RPUSH), one XACK per stream, counts. Not atomic, and
// need not be: a job whose XACK is lost runs again (at least once) and its result is written
// again.
redis::request consumer::ack_request(const std::vector<finished>& batch) const {
  keys k(options_.queue);
  std::map<std::string_view, std::vector<std::string_view>> by_stream;
  std::vector<std::string_view> data, index;
  data.push_back(k.results_data);
  auto finished_at = now_ms();
  auto count = std::to_string(batch.size());
  index.push_back(k.results);
  index.push_back(finished_at);
  index.push_back(count);
  for (const auto& f : batch) {
    by_stream[f.stream].push_back(f.entry_id);
    if (!f.record.empty()) { // a job that returned nothing has nothing to keep but its end
      data.push_back(f.id);
      data.push_back(f.record);
    }
    index.push_back(f.id);
  }
  redis::request req;
  if (data.size() > 1) req.push_range("HSET", data);
  req.push_range("RPUSH", index);
  for (auto& [stream, ids] : by_stream) {
    std::vector<std::string_view> args;
    args.push_back(stream);
    args.push_back(group);
    args.insert(args.end(), ids.begin(), ids.end());
    req.push_range("XACK", args);
  }
  req.push("HINCRBY", k.stats, "completed", count);
  req.push("HINCRBY", k.stats, "results_kept", count); // the index's size, for tidy.lua
  // redis.durability = replicated:N: the acks are settled once N replicas hold them too.
  const auto& durable = pool_.commands().options().durability;
  if (durable.replicas > 0) push_wait(req, durable);
  return req;
}

void consumer::acked(const std::vector<finished>& batch, const redis::connection::response& r) {
  write_accepted();
  const auto& durable = pool_.commands().options().durability;
  if (durable.replicas > 0) {
    // Not worth a retry (the acks are made; a failover now may run these jobs again), but worth
    // a line when it starts and one when it ends.
    auto short_by = short_of_replicas(r.back(), durable,
                                      "the acks of " + std::to_string(batch.size()) + " jobs are");
    if (short_by && !acks_unconfirmed_)
      spdlog::warn("queue {}: {}; the jobs may run again after a failover", options_.queue,
                   *short_by);
    else if (!short_by && acks_unconfirmed_)
      spdlog::info("queue {}: acks are confirmed by the replicas again", options_.queue);
    acks_unconfirmed_ = short_by.has_value();
  }
  stats_.done += batch.size();
  acked_since_tidy_ += batch.size();
  if (acked_since_tidy_ >= 20000) tidy_due_.cancel();
  for (const auto& f : batch) {
    active_[f.stream].erase(f.entry_id);
    settled(f.stream);
  }
}

asio::awaitable<void> consumer::fail(const delivered_job& job, int attempt_made, bool permanent,
                                     const std::string& error,
                                     std::optional<milliseconds> retry_after) {
  auto policy = options_.retry;
  if (job.retry) policy = apply(policy, *job.retry);
  if (job.max_attempts) policy.max_attempts = *job.max_attempts;
  auto v = decide(policy, attempt_made, permanent, error, retry_after, rng_);
  keys k(options_.queue);
  std::vector<std::pair<std::string, std::string>> extra;
  extra.emplace_back("last_error", error);
  extra.emplace_back("errors", with_error(job, attempt_made, error, epoch_ms()));
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
  keys_v.push_back(k.entries);
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
      if (recorded) {
        write_accepted();
        settled(job.stream);
      }
      break;
    }
    if (!r && r.error() == errc::redis_shutdown) break;
    if (r) { // an error reply: the keys gone (then nothing is pending: 0 next time), or refused
      co_await on_error_reply("recording a failed job of", *r);
      continue;
    }
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

} // namespace forq::queue
