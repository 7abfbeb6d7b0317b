#pragma once

// The native protocol as code (docs/protocol.md): the queue's keys and schema version, how a job
// is written to its stream, WAIT for redis.durability, how a refused write becomes an error, and
// a queue's start-up. The producer (forq/queue/producer.hpp), the consumer, the client and the
// bench share it; it is not installed.

#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forq::queue {

// 3: a first attempt's job id carries its priority (`<entry id>-p<N>`); 2: results index (a
// list), tidy.lua, wake, rate. A worker of schema 3 upgrades a schema-2 queue in place.
inline constexpr int schema_version = 3;
inline constexpr int upgrades_from_schema = 2;
// A completed event carries the job's result when it is at most this long (docs/job-control.md).
inline constexpr std::size_t event_result_max = 1024;
// Every key of a queue, under its hash tag.
struct keys {
  explicit keys(std::string_view queue);
  std::string meta, stream, stats;
  std::string delayed, delayed_jobs, dead, dead_jobs, results, results_data;
  std::string wake;       // stream: a doorbell rung by producers of delayed jobs
  std::string rate;       // the rate limiter's window counter
  std::string priorities; // set: the priorities consumers have fetched from (stall recovery)
  std::string minutes;    // hash: figures by the minute, for the dashboard (minutes.lua)
  std::string entries;    // hash: job id -> <priority>:<entry id> of an entry not named by the id
  std::string progress;   // hash: job id -> its running attempt's latest progress (JSON)
  // Job control (docs/job-control.md): the cancel marks of jobs told to stop while they run
  // (hash: job id -> {"by", "at_ms", "reason"}), cancelled jobs (zset by when, and their records),
  // and the ends of waitable jobs (stream: `id`, `state`), which waiters read.
  std::string cancel, cancelled, cancelled_jobs, finished;
  // The queue's events (stream, docs/job-control.md "Events"): written only while meta's `events`
  // (the stream's MAXLEN) turns them on; best-effort.
  std::string events;
  // The queue's schedules (docs/schedules.md, "In Redis"): definitions, per-schedule state,
  // and the zset of when each is next due.
  std::string schedules, schedule_state, schedule_due;
  std::string stream_for(int priority) const; // priority 0: `stream`; 1..9: stream:p<N>
  std::vector<std::string> streams() const;   // every priority's stream, 0 to 9
  // The same keys without building the others, for enqueue's hot path.
  static std::string stream_key(std::string_view queue, int priority);
  static std::string unique_key(std::string_view queue, std::string_view caller_id);
  static std::string named(std::string_view queue, std::string_view name); // forq:{Q}:<name>
  static constexpr std::string_view all_queues = "forq:queues";
  // Worker processes that said they are alive (zset: name -> last beat, ms), and each one's
  // description (string, JSON, expiring): docs/protocol.md, "Workers".
  static constexpr std::string_view workers = "forq:workers";
  static std::string worker(std::string_view name) { return "forq:worker:" + std::string(name); }
  static constexpr std::string_view group = "workers"; // every stream's one consumer group

 private:
  std::string queue_;
};

// A job's stream fields (handler, payload, max_attempts and retry when set) as XADD's arguments, in
// the order the protocol writes them. `storage` keeps the numbers the views point into.
std::vector<std::string_view> job_fields(const new_job& j, std::string& storage);

// The plain XADD of a job without a caller id or a delay (one command), added to `req`.
void push_xadd(redis::request& req, std::string_view queue, const new_job& j);

// The same job as push_xadd, with its `added` event, for a queue whose events are on: added.lua's
// KEYS and ARGV (views into the call's own strings: it neither moves nor copies), and its
// EVALSHA added to `req` (a -NOSCRIPT reply: nothing was done; load it and send it again).
struct added_call {
  added_call(std::string_view queue, const new_job& j);
  added_call(const added_call&) = delete;
  added_call& operator=(const added_call&) = delete;
  std::string stream, meta, events, priority, storage;
  std::vector<std::string_view> keys_v, args;
};
void push_added(redis::request& req, std::string_view queue, const new_job& j);
// Whether `queue`'s events are on (meta's `events`), as this thread last read it through
// `conn`: events_known while that is under a second old (no Redis call), events_on reads it
// again when it is not (docs/job-control.md, "Events").
std::optional<bool> events_known(const redis::connection& conn, std::string_view queue);
boost::asio::awaitable<bool> events_on(redis::connection& conn, std::string_view queue,
                                       redis::exec_options opts = {});

// redis.durability: WAIT <replicas> <timeout>, added to `req` after the writes it confirms.
void push_wait(redis::request& req, const redis::durability& d);
// Why a WAIT's reply does not confirm `what` ("job 1-0 is"), or nothing when enough replicas did.
std::optional<std::string> short_of_replicas(const redis::reply& wait_reply,
                                             const redis::durability& d, std::string_view what);

// How an error reply to an enqueue or another write becomes an error: redis_refuses_writes for
// -OOM/-READONLY/-MISCONF, redis_retry_later, else redis_refused; Redis's words are the message.
error write_error(const redis::reply& r);

// What init_queue found and did.
struct queue_init {
  bool schema_written = false; // the schema was absent: the queue is new, or its keys were gone
  int groups_created = 0;      // consumer groups that were missing
  int upgraded_from = 0;       // the older schema upgraded in place, or 0
};

// Start-up of a queue, one atomic script (init_queue.lua): writes the schema version on first
// use, creates the consumer group on every stream of the queue, and refuses a queue written by
// an incompatible forq (errc::queue_schema_mismatch); then registers the queue (forq:queues).
// Completes with the connection's errors while Redis is away, and with redis_refuses_writes
// while Redis refuses writes (callers retry with backoff).
boost::asio::awaitable<boost::system::error_code>
init_queue(redis::connection& conn, std::string_view queue, queue_init* what = nullptr);

// Puts a queue's keys back after they vanished from Redis (restarted without persistence,
// flushed, failed over to an empty replica): init_queue again, at once. Every user of a queue
// calls it when Redis says the keys are gone (-NOGROUP, a missing schema). The one caller whose
// script actually recreated them logs the warning, so an event costs one line however many
// workers notice it. Completes with init_queue's error, if any.
boost::asio::awaitable<boost::system::error_code> restore_queue(redis::connection& conn,
                                                                std::string_view queue);

// Start-up as a worker does it: init_queue, tried again with backoff (100 ms doubling to 5 s,
// each wait logged) while Redis cannot answer (loading, busy, connection lost, timed out; an
// unreachable Redis makes the request wait inside the connection, which logs that itself).
// Completes with success, or a fatal error: queue_schema_mismatch, invalid_job (bad name),
// redis_refused (an error reply retrying cannot fix), redis_auth_failed, or redis_shutdown
// (stopped meanwhile). A Redis that refuses writes is waited for, said once.
boost::asio::awaitable<boost::system::error_code> start_queue(redis::connection& conn,
                                                              std::string_view queue);

} // namespace forq::queue
