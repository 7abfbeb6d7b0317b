// A consumer's attempts: running a handler, acknowledging in batches, failing into a retry or
// the dead set.
#include "consumer_detail.hpp"
#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "queue/verdict.hpp"
#include "scripts.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <span>

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

consumer::attempt_context::attempt_context(consumer& c)
    : owner(&c)
    , bell(c.pool_.commands().executor(), std::chrono::steady_clock::time_point::max()) {}

void consumer::attempt_context::begin(const delivered_job& j) {
  job = &j;
  attempt_ = j.attempt + 1;
  stalls_ = j.stalls;
  cancel_reason_.clear();
  timed_out = by_mark = false;
  in_handler = false;
  progress_value.clear();
  progress_dirty = progress_reported = false;
  started_ms = epoch_ms();
  const auto limit = owner->options_.attempt_timeout;
  if (limit.count() > 0) {
    due = std::chrono::steady_clock::now() + limit;
    deadline_ = std::chrono::system_clock::now() + limit;
  } else {
    due = std::chrono::steady_clock::time_point::max();
    deadline_.reset();
  }
}

void consumer::attempt_context::cancel(std::string reason) {
  if (!in_handler || cancelled()) return;
  cancel_reason_ = std::move(reason);
  bell.cancel();
  signal.emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> consumer::attempt_context::until_cancelled() {
  while (!cancelled()) {
    auto [ec] = co_await bell.async_wait(use_tuple);
    if (ec && !cancelled()) co_return; // this wait itself was cancelled (bound to the signal)
  }
}

expected<> consumer::attempt_context::progress(std::string_view json) {
  if (auto ok = check_progress(json); !ok) return ok;
  if (!owner || !in_handler) return {};
  progress_value.assign(json);
  progress_reported = true;
  if (!progress_dirty) {
    progress_dirty = true;
    if (owner->progress_pending_++ == 0) owner->progress_due_.cancel();
  }
  return {};
}

asio::awaitable<expected<enqueue_result>> consumer::attempt_context::enqueue(std::string_view queue,
                                                                             const new_job& j) {
  if (!owner) co_return error(errc::redis_unavailable, "the worker's consumer has stopped");
  co_return co_await queue::enqueue(owner->pool_.commands(), queue, j);
}

consumer::~consumer() {
  for (auto& c : contexts_->all)
    c->owner = nullptr;
}

void consumer::start(delivered_job job) {
  ++running_;
  if (options_.share) options_.share->started(member_);
  attempt_context* ctx;
  if (contexts_->spare.empty()) {
    contexts_->all.push_back(std::make_unique<attempt_context>(*this));
    ctx = contexts_->all.back().get();
  } else {
    ctx = contexts_->spare.back();
    contexts_->spare.pop_back();
  }
  // The context is reused once the coroutine is gone (its completion), not before: a bound
  // coroutine's cancellation state lives in the signal.
  auto done = [pool = contexts_, ctx](std::exception_ptr) { pool->spare.push_back(ctx); };
  // Bound to the context's signal where forq cancels attempts that keep running (the queue's
  // attempt_timeout). Binding costs Asio a cancellation handler and an allocation per job,
  // 3-4% of a drain's worker CPU (perf, ADR 0015), so a queue without a timeout is not bound:
  // a cancel there (the worker leaving) is seen through cancelled() and until_cancelled().
  if (options_.attempt_timeout.count() > 0)
    asio::co_spawn(pool_.commands().executor(), attempt(std::move(job), *ctx),
                   asio::bind_cancellation_slot(ctx->signal.slot(), std::move(done)));
  else
    asio::co_spawn(pool_.commands().executor(), attempt(std::move(job), *ctx), std::move(done));
}

asio::awaitable<void> consumer::attempt(delivered_job job, attempt_context& ctx) {
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
  ctx.begin(job);
  running_list_.push_back(ctx);
  if (events_max_ > 0) note_started(job);
  // The cancel loop sleeps without end while nothing runs: wake it, once (short jobs one after
  // another must not wake it each: it looks every cancel_check_every from then on).
  if (cancel_idle_) {
    cancel_idle_ = false;
    cancel_due_.cancel();
  }
  // The deadline loop sleeps without end when no attempt it watches is left: wake it.
  if (options_.attempt_timeout.count() > 0 &&
      deadline_due_.expiry() == std::chrono::steady_clock::time_point::max())
    deadline_due_.cancel();
  outcome out;
  if (job.handler.empty()) job.handler = options_.default_handler;
  auto h = handlers_.find(job.handler);
  if (job.handler.empty()) {
    out = outcome::failure("the job names no handler and queue \"" + options_.queue +
                           "\" has no default handler");
  } else if (h == handlers_.end()) {
    out = outcome::failure("unknown handler \"" + job.handler + "\"");
  } else {
    ctx.in_handler = true;
    try {
      out = co_await h->second(job, ctx);
    } catch (const std::exception& e) {
      out = outcome::retry_later(std::string("the handler threw: ") + e.what());
    } catch (...) {
      out = outcome::retry_later("the handler threw something that is not a std::exception");
    }
    ctx.in_handler = false;
    if (ctx.cancelled()) {
      // Cancelled: the awaits that follow are the consumer's own, not to be aborted.
      co_await asio::this_coro::reset_cancellation_state();
      // Told of a cancel (docs/job-control.md): the job ends cancelled whatever the handler
      // then says; one that finished before it was told has completed.
      if (ctx.by_mark)
        out = outcome::cancelled(ctx.cancel_reason());
      else if (out.what != outcome::kind::done) {
        if (ctx.timed_out)
          out = outcome::retry_later(ctx.cancel_reason());
        else if (out.what != outcome::kind::cancelled)
          out = outcome::cancelled(ctx.cancel_reason());
      }
    }
  }
  ctx.unlink();
  if (ctx.progress_dirty) { // not written yet, and cleared with the outcome below
    ctx.progress_dirty = false;
    --progress_pending_;
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
    f.progress = ctx.progress_reported;
    f.waitable = job.waitable;
    if (events_max_ > 0) note_completed(job, out.text);
    to_ack_.push_back(std::move(f));
    acks_.enter();
  } else {
    const bool permanent = out.what != outcome::kind::retry;
    co_await fail(job, job.attempt + 1, permanent, out.text, out.retry_after,
                  out.what == outcome::kind::cancelled);
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
    progress_due_.cancel();
    deadline_due_.cancel();
    cancel_due_.cancel();
  }
}

asio::awaitable<void> consumer::progress_loop() {
  while (!wound_down()) {
    // Events go out at once (the attempts started in one turn of the loop share a write; what
    // is noted while it is out goes in the next): an http handler's app may report progress
    // through the API as soon as it has the job, and its event must come after this one. (This
    // loop, not one of its own: one more coroutine beside the others cost the drain ~5%.)
    if (!events_out_.empty() && progress_pending_ == 0) {
      co_await send_events();
      continue;
    }
    if (progress_pending_ == 0) {
      co_await wait(progress_due_);
      continue;
    }
    // At most one write per 100 ms: what was reported meanwhile replaces what came before.
    const auto next = progress_written_ + milliseconds(100);
    if (std::chrono::steady_clock::now() < next) {
      if (!events_out_.empty()) {
        co_await send_events();
        continue;
      }
      progress_due_.expires_at(next);
      co_await progress_due_.async_wait(use_tuple);
      continue;
    }
    keys k(options_.queue);
    std::vector<std::string_view> args{k.progress};
    for (auto& a : running_list_)
      if (a.progress_dirty) {
        a.progress_dirty = false;
        args.push_back(a.job->id);
        args.push_back(a.progress_value);
        if (events_max_ > 0) note_event("progress", a.job->id, {"progress", a.progress_value});
      }
    progress_pending_ = 0;
    progress_written_ = std::chrono::steady_clock::now();
    if (args.size() == 1) continue;
    redis::request req;
    const auto events = take_events(req); // the jobs' events so far, in their order
    req.push_range("HSET", args);         // copies the values: they may change while it is out
    auto r = co_await pool_.commands().exec(req);
    if (r && r->size() > events && (*r)[events].is_error())
      co_await on_error_reply("writing the progress of jobs of", (*r)[events], false);
  }
}

void consumer::note_event(std::string_view name, std::string_view id,
                          std::initializer_list<std::string_view> fields) {
  // The key and the MAXLEN as text, made once (not per event: a drain notes two a job).
  if (events_key_.empty()) events_key_ = keys::named(options_.queue, "events");
  if (events_max_text_.first != events_max_)
    events_max_text_ = {events_max_, std::to_string(events_max_)};
  std::array<std::string_view, 16> args{std::string_view(events_key_),
                                        "MAXLEN",
                                        "~",
                                        events_max_text_.second,
                                        "*",
                                        "event",
                                        name,
                                        "id",
                                        id};
  std::size_t n = 9;
  for (auto f : fields)
    if (n < args.size()) args[n++] = f;
  const bool first = events_out_.empty();
  events_out_.push_range("XADD", std::span(args.data(), n));
  if (first) progress_due_.cancel(); // progress_loop sends it next, if nothing else took it
}

// Out of the attempt's coroutine, so its frame (one per job) carries none of this.
void consumer::note_started(const delivered_job& job) {
  note_event("active", job.id, {"attempt", std::to_string(job.attempt + 1)});
}

void consumer::note_completed(const delivered_job& job, const std::string& result) {
  // The result goes with the event when it is small (the job's record keeps it anyway).
  const auto attempt = std::to_string(job.attempt + 1);
  if (!result.empty() && result != "null" && result.size() <= event_result_max)
    note_event("completed", job.id, {"attempt", attempt, "result", result});
  else
    note_event("completed", job.id, {"attempt", attempt});
}

std::size_t consumer::take_events(redis::request& req) {
  const auto n = events_out_.commands();
  if (n == 0) return 0;
  req.append(events_out_);
  events_out_ = redis::request();
  return n;
}

asio::awaitable<void> consumer::send_events() {
  redis::request req;
  if (take_events(req) == 0) co_return;
  // Best-effort (docs/job-control.md): a refused write loses these events, said in the log.
  auto r = co_await pool_.commands().exec(req);
  if (!r) co_return;
  for (const auto& one : *r)
    if (one.is_error()) {
      co_await on_error_reply("writing the events of", one, false);
      break;
    }
}

asio::awaitable<void> consumer::deadline_loop() {
  if (options_.attempt_timeout.count() <= 0) co_return;
  while (!wound_down()) {
    // Attempts are listed as they started, so by deadline (they all have the same timeout).
    const auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::steady_clock::time_point::max();
    std::vector<attempt_context*> due;
    for (auto& a : running_list_) {
      if (a.cancelled() || !a.in_handler) continue;
      if (a.due > now) {
        next = a.due;
        break;
      }
      due.push_back(&a);
    }
    for (auto* a : due) {
      a->timed_out = true;
      a->cancel("timed out after " + std::to_string(options_.attempt_timeout.count()) +
                " ms (the queue's timeout)");
    }
    deadline_due_.expires_at(next);
    co_await deadline_due_.async_wait(use_tuple);
  }
}

asio::awaitable<void> consumer::cancel_loop() {
  while (!wound_down()) {
    if (running_list_.empty() && !cancel_awake_) {
      if (stopping_) break; // nothing starts from now on
      cancel_idle_ = true;
      co_await wait(cancel_due_); // an attempt's start wakes it (and clears cancel_idle_)
      cancel_idle_ = false;
      cancel_awake_ = true; // look at least once after a wake, however short the attempt
      continue;
    }
    cancel_awake_ = false;
    cancel_due_.expires_after(options_.cancel_check_every);
    co_await cancel_due_.async_wait(use_tuple);
    if (running_list_.empty()) continue;
    cancel_awake_ = true; // something runs: look again after the next period
    // One HMGET of the cancel marks of every attempt running here (1,000 ids a command), and
    // the queue's events setting (read here while the queue is busy: refresh_paused reads it
    // after idle waits).
    const keys k(options_.queue);
    redis::request req("HGET", k.meta, "events");
    std::vector<std::string> ids;
    std::vector<std::string_view> args;
    for (auto& a : running_list_)
      if (a.in_handler && !a.cancelled()) ids.push_back(a.job->id);
    for (std::size_t from = 0; from < ids.size(); from += 1000) {
      args.assign(1, k.cancel);
      for (auto i = from; i < std::min(ids.size(), from + 1000); ++i)
        args.push_back(ids[i]);
      req.push_range("HMGET", args);
    }
    auto r = co_await pool_.commands().exec(req);
    if (!r) continue; // the connection's trouble: looked at again next time
    if (!r->front().is_error())
      events_max_ = std::max<std::int64_t>(0, r->front().as_integer().value_or(0));
    std::map<std::string, std::string, std::less<>> marked;
    std::size_t at = 0;
    for (std::size_t i = 1; i < r->size(); ++i) {
      const auto& one = (*r)[i];
      if (one.is_error()) {
        co_await on_error_reply("reading the cancel marks of", one, false);
        break;
      }
      for (const auto& v : one.elements()) {
        if (at < ids.size() && v.is_string()) marked.emplace(ids[at], std::string(v.str()));
        ++at;
      }
    }
    if (marked.empty()) continue;
    // Attempts may have ended meanwhile: only those still running are told.
    for (auto& a : running_list_) {
      auto m = marked.find(a.job->id);
      if (m == marked.end() || !a.in_handler || a.cancelled()) continue;
      a.by_mark = true;
      a.cancel(cancel_words(m->second));
    }
  }
}

asio::awaitable<bool> consumer::acks_sent(std::chrono::steady_clock::time_point until) {
  co_return co_await acks_.wait(until, false);
}

asio::awaitable<void> consumer::ack_loop() {
  for (;;) {
    if (to_ack_.empty()) {
      if (wound_down()) break;
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
    // The batch's events (and any before them) first, in the same round trip; their errors
    // are not the acks' (best-effort: they are not sent again).
    auto req = ack_request(batch);
    std::size_t events = 0;
    if (!events_out_.empty()) { // (a copy of the acks, only while events are on)
      redis::request both;
      events = take_events(both);
      req = std::move(both.append(req));
    }
    auto r = co_await pool_.commands().exec(req, durable.replicas > 0 ? durable.timeout
                                                                      : milliseconds(0));
    stats_.round_trip.add(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - sent));
    if (!r && r.error() == errc::redis_shutdown) break; // these stay pending: stall recovery
    const redis::reply* refused = nullptr;
    if (r)
      for (std::size_t i = events; i < r->size(); ++i)
        if ((*r)[i].is_error()) refused = &(*r)[i];
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
  std::vector<std::string_view> progress{k.progress};
  for (const auto& f : batch)
    if (f.progress) progress.push_back(f.id);
  if (progress.size() > 1) req.push_range("HDEL", progress); // only jobs that reported some
  for (const auto& f : batch) // waiters hear of their jobs' ends (docs/job-control.md)
    if (f.waitable)
      req.push("XADD", k.finished, "MAXLEN", "~", "10000", "*", "id", f.id, "state", "completed");
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
    acks_.leave();
  }
}

asio::awaitable<void> consumer::fail(const delivered_job& job, int attempt_made, bool permanent,
                                     const std::string& error,
                                     std::optional<milliseconds> retry_after, bool cancelled) {
  auto policy = options_.retry;
  if (job.retry) policy = apply(policy, *job.retry);
  if (job.max_attempts) policy.max_attempts = *job.max_attempts;
  auto v = decide(policy, attempt_made, permanent, error, retry_after, rng_);
  if (cancelled) v.retry = false;
  keys k(options_.queue);
  std::vector<std::pair<std::string, std::string>> extra;
  extra.emplace_back("last_error", error);
  extra.emplace_back("errors", with_error(job, attempt_made, error, epoch_ms()));
  if (!v.retry && !cancelled) extra.emplace_back("reason", v.reason);
  auto json = to_json(job, attempt_made, extra);
  auto now = now_ms();
  auto when = v.retry ? now_ms(v.delay) : now;
  std::vector<std::string_view> keys_v, args;
  keys_v.push_back(job.stream);
  keys_v.push_back(k.delayed);
  keys_v.push_back(k.delayed_jobs);
  keys_v.push_back(k.dead);
  keys_v.push_back(k.dead_jobs);
  keys_v.push_back(k.stats);
  keys_v.push_back(k.entries);
  keys_v.push_back(k.progress);
  keys_v.push_back(k.cancel);
  keys_v.push_back(k.cancelled);
  keys_v.push_back(k.cancelled_jobs);
  keys_v.push_back(k.finished);
  keys_v.push_back(k.meta);
  keys_v.push_back(k.events);
  const auto attempt = std::to_string(attempt_made);
  args.push_back(group);
  args.push_back(job.entry_id);
  args.push_back(job.id);
  args.push_back(cancelled ? "cancelled" : v.retry ? "retry" : "dead");
  args.push_back(when);
  args.push_back(json);
  args.push_back(job.waitable ? "1" : "0");
  args.push_back(now);
  args.push_back(error);
  args.push_back(attempt);
  args.push_back(v.reason);
  if (events_max_ > 0) co_await send_events(); // what came before this job's end goes first
  std::int64_t recorded = 0;                   // fail.lua: 1 retried, 2 dead, 3 cancelled
  for (int tries = 0; tries < 50; ++tries) {
    auto r = co_await redis::eval(pool_.commands(), detail::scripts().fail, keys_v, args);
    if (r && !r->is_error()) {
      // 0: no longer pending, settled by whoever recovered it; nothing was written.
      recorded = r->as_integer().value_or(0);
      if (recorded > 0) {
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
  if (recorded == 1) {
    ++stats_.retried;
    promote_due_.cancel(); // it may be due before the promoter's next look
  } else if (recorded == 2) {
    ++stats_.dead;
    spdlog::warn("job {} of queue {} is dead: {}", job.id, options_.queue, v.reason);
  } else if (recorded == 3) {
    ++stats_.cancelled;
    spdlog::info("job {} of queue {} is cancelled", job.id, options_.queue);
  }
}

} // namespace forq::queue
