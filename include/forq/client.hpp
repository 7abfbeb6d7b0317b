#pragma once

// forq::client: what an application or an operator does to queues besides consuming them
// (docs/protocol.md): enqueue one or many, look a job up, queue figures, the dead set, pause.
// Built on one redis::connection; every call is a few round trips at most, and none of it is
// on a consumer's hot path. The `forq enqueue|queues|job|dead|pause|resume` commands are thin
// shells around it.

#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace forq {

// One job as it stands, gathered from wherever the protocol keeps it.
// A job as forq shows it: `forq job`, `forq dead list`, the HTTP API (and the dashboard) all
// print this one shape, through to_json (docs/operations.md, "One shape for a job").
struct job_info {
  std::string queue, id;
  // ready | active | delayed | completed | dead | cancelled (docs/job-control.md)
  std::string state;
  std::string handler, payload;      // when still known (not kept for completed jobs)
  int attempts = 0;                  // attempts made; completed: including the last
  std::optional<int> priority;       // when known (not kept for completed jobs)
  std::optional<int> max_attempts;   // the job's own, if it set one
  std::optional<std::string> retry;  // the job's own retry policy, if it set one
  std::optional<std::string> result; // completed with a result: its JSON
  std::optional<std::string> last_error, reason;
  // Every failed attempt's error kept (the last 10): [{"attempt", "at_ms", "error"}, ...].
  std::optional<boost::json::array> errors;
  std::optional<std::int64_t> run_at_ms;     // delayed: when it becomes ready
  std::optional<std::int64_t> finished_ms;   // completed or dead: when
  std::optional<std::int64_t> queued_ms;     // ready or active: when this attempt's entry was added
  std::optional<std::string> consumer;       // active: the consumer holding its lease
  std::optional<std::int64_t> lease_idle_ms; // active: since its lease was taken or renewed
  std::optional<std::string> progress;       // active: the attempt's latest progress (JSON)
  bool waitable = false;                     // its end is announced to waiters
  // Cancelled: who and why (finished_ms: when). Active with a cancel asked for and not yet
  // heard by its worker: cancel_requested, and who and why.
  std::optional<std::string> cancelled_by, cancel_reason;
  bool cancel_requested = false;
  // Fields a producer added that forq does not use (shown as they are: "fields": {...}).
  std::vector<std::pair<std::string, std::string>> other_fields;
  boost::json::object to_json() const;
};

// One minute of a queue, summed over every worker (docs/protocol.md, "Figures by the minute").
struct minute_figures {
  std::int64_t at_ms = 0; // the minute's start
  std::uint64_t done = 0, failed = 0;
  std::uint64_t started = 0; // attempts started (with a pick-up latency)
  // Pick-up latency of those attempts (entry in its stream to the attempt's start), estimated
  // from buckets; none when no attempt started in the minute.
  std::optional<double> pickup_p50_ms, pickup_p99_ms;
  boost::json::object to_json() const;
};

struct queue_stats {
  std::string queue;
  std::int64_t ready = 0, active = 0, delayed = 0, dead = 0;
  std::int64_t cancelled = 0;                                     // kept (the last 10,000)
  std::int64_t completed = 0, retried = 0, stalled = 0, died = 0; // running totals
  std::int64_t cancels = 0;                                       // running total
  bool paused = false;
  std::int64_t rate_max = 0, rate_ms = 0; // 0: no rate limit
  std::int64_t schedules = 0;             // schedules defined on the queue (docs/schedules.md)
  std::int64_t events_max = 0;            // its events stream's MAXLEN while events are on; 0: off
  std::vector<minute_figures> minutes;    // when asked for: the last N minutes, oldest first
  boost::json::object to_json() const;
};

// One entry of a queue's events stream (docs/job-control.md, "Events").
struct queue_event {
  std::string event_id; // the stream entry's id: `<ms>-<n>`, when it was written; resume after it
  std::string event;    // added, active, progress, completed, failed, retrying, dead, cancelled,
                        // stalled
  std::string job_id;
  std::vector<std::pair<std::string, std::string>> fields; // the others, as written
  // {"event_id", "at_ms", "event", "id", and the fields: attempt, stalls and run_at_ms as
  // numbers, progress and result as the JSON they hold, the others as strings}.
  boost::json::object to_json() const;
};

// One job of enqueue_many: the result, or why it was refused (nothing was added for it).
struct enqueue_outcome {
  std::optional<queue::enqueue_result> added;
  std::string refused;
  // redis.durability = replicated:N and fewer replicas acknowledged it in time: the job is on
  // the primary (added, or named in these words) but not confirmed. Empty: confirmed, or async.
  std::string unconfirmed;
};

class client {
 public:
  // `opts.deadline`: every call gives up then (the HTTP API's per-request limit): a request not
  // yet sent completes with errc::redis_unavailable (nothing was done), one sent and unanswered
  // with redis_timeout (it may have taken effect). None: wait for Redis as long as it takes.
  explicit client(redis::connection& conn, redis::exec_options opts = {})
      : conn_(conn)
      , opts_(opts) {}

  // queue::enqueue with this client's deadline (forq/queue/producer.hpp).
  boost::asio::awaitable<expected<queue::enqueue_result>> enqueue(std::string_view queue,
                                                                  const queue::new_job& j);

  // Many jobs: plain ones pipelined, 1,000 XADDs a round trip; caller-given ids and delayed
  // jobs one script call each. One outcome per job, in order. Fails as a whole only when Redis
  // does (then some may have been added: their ids are lost with the error).
  boost::asio::awaitable<expected<std::vector<enqueue_outcome>>>
  enqueue_many(std::string_view queue, const std::vector<queue::new_job>& jobs);

  // Nothing: no queue knows the id (never enqueued, or completed and its record evicted).
  boost::asio::awaitable<expected<std::optional<job_info>>> get_job(std::string_view queue,
                                                                    std::string_view id);
  // The job with this id in whichever queue knows it (the first, by name: a generated id is
  // unique in its queue only, so give the queue to get_job when it is known). Reads by key only:
  // one round trip per 100 queues says which queues may hold it, then those are looked in, so
  // an unknown id costs a few small round trips however many queues and jobs there are.
  boost::asio::awaitable<expected<std::optional<job_info>>> find_job(std::string_view id);
  // Reports a running job's progress from outside the worker that runs it (an http handler's
  // app, through the HTTP API): JSON text of at most 4,096 bytes (else invalid_value), written
  // only while the job's attempt runs (progress.lua), and cleared when it ends. Returns the
  // job's state: "active" when written; another state (nothing written); "finished" when the
  // attempt ended meanwhile; empty when no such job is in the queue.
  boost::asio::awaitable<expected<std::string>>
  set_progress(std::string_view queue, std::string_view id, std::string_view json);

  // Cancels a job (docs/job-control.md): a ready, delayed or retry-waiting job never starts and
  // ends cancelled at once; a running one is marked, and whoever runs it is told within its
  // consumer's cancel_check_every (500 ms) and ends it cancelled (a handler that finished before
  // it heard has completed). `by` and `why` are kept with it. Nothing: no such job.
  struct cancel_result {
    std::string outcome; // cancelled | requested (running: told) | already_requested | terminal
    job_info job;        // the job as it stands after the call
  };
  boost::asio::awaitable<expected<std::optional<cancel_result>>> cancel(std::string_view queue,
                                                                        std::string_view id,
                                                                        std::string_view by = "api",
                                                                        std::string_view why = "");

  // Waits until the job ends (completed, dead or cancelled) or `timeout` passes, and returns it
  // as it stands then (nothing: no such job, or it ended and its record was evicted). A job
  // that ended before the call returns at once. A waitable job (new_job::waitable) wakes the
  // wait the moment it ends: the wait reads the queue's `finished` stream, blocking inside
  // Redis on this client's connection for up to a second at a time (so give a wait a
  // connection of its own); another job is looked up again every 100 ms, growing to 1 s.
  boost::asio::awaitable<expected<std::optional<job_info>>>
  wait(std::string_view queue, std::string_view id, std::chrono::milliseconds timeout);

  boost::asio::awaitable<expected<queue_stats>> stats(std::string_view queue);
  // Many queues' stats, 100 queues a round trip (two trips each), every command on one key (so
  // a Redis Cluster can route it): what the dashboard's overview reads for 1,000 queues.
  // `minutes` > 0: each with its last `minutes` minutes (at most 60), in the same round trips.
  boost::asio::awaitable<expected<std::vector<queue_stats>>>
  stats_many(const std::vector<std::string>& queues, int minutes = 0);
  // Every queue a forq has initialised or enqueued to on this Redis (forq:queues).
  boost::asio::awaitable<expected<std::vector<std::string>>> queues();
  // Whether `queue` is among them (one SISMEMBER).
  boost::asio::awaitable<expected<bool>> known(std::string_view queue);
  // Whether a worker has started on the queue (its schema is written): jobs enqueued to a queue
  // without one wait until one starts. One HEXISTS.
  boost::asio::awaitable<expected<bool>> has_workers(std::string_view queue);
  // The worker processes alive now, each as it described itself in its last beat (every 10 s;
  // gone 30 s after its last): name, host, pid, slot, version, started_ms, beat_ms, state,
  // redis, concurrency, queues [{queue, started, running, done, failed}]. Sorted by name.
  boost::asio::awaitable<expected<std::vector<boost::json::object>>> workers();

  // The oldest `limit` dead jobs (state "dead", finished_ms: when each died).
  boost::asio::awaitable<expected<std::vector<job_info>>> dead(std::string_view queue,
                                                               std::size_t limit = 100);
  // A page of a queue's jobs in one state: dead (oldest death first), delayed (soonest first),
  // completed (newest first; those whose record is kept), ready or active (highest priority
  // first, then oldest first; these two reach 10,000 deep: offset + limit <= 10,000).
  // errc::invalid_value for another state or a page too deep.
  boost::asio::awaitable<expected<std::vector<job_info>>>
  list_jobs(std::string_view queue, std::string_view state, std::size_t offset, std::size_t limit);
  // Jobs whose id, handler, payload, result, last error or reason contains `text`, among the
  // first `scan_each` dead, delayed and completed jobs (bounded: what it costs Redis does not
  // grow with the queue), at most `most` of them.
  boost::asio::awaitable<expected<std::vector<job_info>>> search(std::string_view queue,
                                                                 std::string_view text,
                                                                 std::size_t scan_each = 1000,
                                                                 std::size_t most = 50);
  // The ids of every dead job whose id, handler, payload, last error or reason contains `text`
  // (the dead set read 1,000 a round trip, oldest death first): what a bulk retry or purge of
  // "all matching a filter" takes.
  boost::asio::awaitable<expected<std::vector<std::string>>> dead_matching(std::string_view queue,
                                                                           std::string_view text);
  // Back to ready as fresh jobs (same id, attempt 0) / gone for good. No ids: every dead job.
  // Returns how many were handled.
  boost::asio::awaitable<expected<std::size_t>>
  retry_dead(std::string_view queue, const std::vector<std::string>& ids = {});
  boost::asio::awaitable<expected<std::size_t>>
  purge_dead(std::string_view queue, const std::vector<std::string>& ids = {});

  // Consumers stop fetching from a paused queue within their pause_check_every (250 ms by
  // default); attempts in flight finish; jobs fetched meanwhile are handed back.
  boost::asio::awaitable<expected<>> pause(std::string_view queue);
  boost::asio::awaitable<expected<>> resume(std::string_view queue);

  // At most `max` jobs of the queue start per `interval`, counted across every consumer on this
  // Redis (a fixed window); consumers pick a change up within pause_check_every. Nothing: no
  // limit. errc::invalid_value for a bad name or a limit out of bounds.
  boost::asio::awaitable<expected<>>
  set_rate_limit(std::string_view queue,
                 std::optional<std::pair<std::int64_t, std::chrono::milliseconds>> limit);

  // The queue's events (docs/job-control.md, "Events"): best-effort, and written only while
  // turned on. set_events: on, keeping about `max` of them (events_max_bounds), or off
  // (nothing: the stream is deleted). Producers and workers see a change within a second.
  boost::asio::awaitable<expected<>> set_events(std::string_view queue,
                                                std::optional<std::int64_t> max);
  // Up to `count` events after `after` (an event id; "0": from the oldest kept), oldest first.
  // `block` > 0: when there is none yet, waits for one inside Redis up to that long, on this
  // client's connection. `after` = "$": only events written from now on (needs `block`).
  boost::asio::awaitable<expected<std::vector<queue_event>>>
  events(std::string_view queue, std::string_view after, std::size_t count,
         std::chrono::milliseconds block = std::chrono::milliseconds(0));
  // The newest `count` events, oldest first.
  boost::asio::awaitable<expected<std::vector<queue_event>>> last_events(std::string_view queue,
                                                                         std::size_t count);

 private:
  boost::asio::awaitable<expected<std::size_t>> dead_op(std::string_view queue, std::string_view op,
                                                        const std::vector<std::string>& ids);
  boost::asio::awaitable<expected<>> set_paused(std::string_view queue, std::string_view value);
  // Runs `req` (a change to the queue's meta) with the queue's registration, in one trip.
  boost::asio::awaitable<expected<>> change_meta(std::string_view queue, redis::request req);
  boost::asio::awaitable<expected<std::vector<job_info>>> list_in_streams(std::string_view queue,
                                                                          std::string_view state,
                                                                          std::size_t offset,
                                                                          std::size_t limit);
  boost::asio::awaitable<boost::system::result<redis::connection::response>>
  exec(const redis::request& req) {
    return conn_.exec(req, opts_);
  }
  redis::connection& conn_;
  redis::exec_options opts_;
  std::set<std::string, std::less<>> registered_; // queues this client has put in forq:queues
};

} // namespace forq
