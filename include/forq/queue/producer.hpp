#pragma once

// Enqueueing from C++: the job you enqueue (new_job; the job a handler gets is forq::job), its
// check, and enqueue on a connection. forq/client.hpp wraps it with the rest of an application's
// API (stats, job lookup, dead jobs, pause). The protocol's keys and start-up are internal
// (src/queue/protocol.hpp, docs/protocol.md).

#include "forq/names.hpp"
#include "forq/queue/limits.hpp"
#include "forq/queue/retry.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forq::queue {

inline constexpr std::size_t default_max_payload = 1u << 20; // 1 MiB

// check_queue_name: forq/names.hpp.

// A job to enqueue.
struct new_job {
  std::string handler;
  std::string payload = "{}";      // JSON text
  std::optional<std::string> id;   // caller-given: enqueued at most once
  int priority = 0;                // priority_bounds: 0 to 9, higher first
  std::optional<int> max_attempts; // attempts_bounds
  // Over the queue's retry policy (docs/retries.md); written as the `retry` field's text.
  std::optional<retry_override> retry;
  // Run no earlier than this (ms since the Unix epoch); in the past or absent: ready now; at
  // most delay_bounds (a year) from now.
  std::optional<std::int64_t> run_at_ms;
  // Its end is announced to waiters (the `waitable` field; docs/job-control.md, "Wait"): a wait
  // for it wakes the moment it ends. A job without it can be waited for too, by looking it up
  // again and again (every 100 ms to 1 s).
  bool waitable = false;
};

// Milliseconds since the Unix epoch, now: the clock of run_at_ms and of every *_ms field.
std::int64_t epoch_ms();

// Nothing, or errc::invalid_job with why the job is refused before it reaches Redis (not JSON,
// too large, no handler, ...): the message names the field and what is allowed.
expected<> check_job(const new_job& j, std::size_t max_payload = default_max_payload);

struct enqueue_result {
  std::string id; // the job id: the caller's, or the generated one (first_attempt_id)
  bool duplicate; // a job with this caller-given id was already enqueued: nothing was added
};

// Adds a job to the queue: one XADD, the enqueue_unique script for a caller-given id, or the
// enqueue_delayed script for a job that runs later (run_at_ms in the future). With
// redis.durability = replicated:N (the connection's options), then WAIT: fewer replicas in time
// completes it with errc::redis_not_confirmed, the job's id in the message (it is on the primary).
// Checks the job first (errc::invalid_job, the message says why). A Redis that refuses writes
// completes it with errc::redis_refuses_writes (nothing was added; Redis's words in the message).
// `opts` carries the caller's deadline (redis::exec_options). The connection must be running.
boost::asio::awaitable<expected<enqueue_result>> enqueue(redis::connection& conn,
                                                         std::string_view queue, const new_job& j,
                                                         redis::exec_options opts = {});

} // namespace forq::queue
