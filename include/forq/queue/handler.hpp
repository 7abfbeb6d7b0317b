#pragma once

// What a handler is: the job it gets (delivered_job), what it says (outcome), and its type.
// All a handler author needs (forq/forq.hpp), without the consumer's machinery.

#include "forq/error.hpp"
#include "forq/queue/retry.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forq::queue {

// A job as a consumer received it: one stream entry, converted in one place (parse_entry).
struct delivered_job {
  std::string queue;
  std::string stream;   // the key it was read from (priority streams differ)
  std::string entry_id; // this attempt's entry
  std::string id;       // the job's id for life: the `id` field, or the first entry's id
  std::string handler;
  std::string payload;
  int attempt = 0; // attempts made before this one
  int stalls = 0;  // runs of this attempt whose lease expired before (stall recovery sets it)
  std::optional<int> max_attempts;
  std::optional<retry_override> retry; // the job's own `retry` field, over its queue's policy
  int priority = 0;
  bool waitable = false; // its end is announced to waiters (the `waitable` field is "1")
  std::vector<std::pair<std::string, std::string>> fields; // every field, as received
};

// What a handler says about one attempt.
struct outcome {
  enum class kind { done, retry, fail, cancelled };
  kind what = kind::done;
  std::string text; // done: the result (JSON text); otherwise the reason, for an operator
  std::optional<std::chrono::milliseconds> retry_after; // retry: the handler's own delay

  static outcome success(std::string result = "null") {
    return {kind::done, std::move(result), {}};
  }
  // Worth another attempt, after the policy's backoff (or `after`).
  static outcome retry_later(std::string error,
                             std::optional<std::chrono::milliseconds> after = std::nullopt) {
    return {kind::retry, std::move(error), after};
  }
  // Fail now, no retry: retrying cannot help. Dead at once, with this reason.
  static outcome failure(std::string error) { return {kind::fail, std::move(error), {}}; }
  // The job should not run to its end (the handler stopped because it was told to, or it
  // decided so itself): never retried, whatever its attempts left. It ends `cancelled`
  // (docs/job-control.md), by "handler" with this reason unless a cancel said otherwise.
  static outcome cancelled(std::string why) { return {kind::cancelled, std::move(why), {}}; }
};

struct new_job;        // forq/queue/producer.hpp
struct enqueue_result; // forq/queue/producer.hpp

// What a running attempt can do besides returning an outcome: learn its attempt number and
// deadline, report progress, enqueue follow-up jobs on the worker's own connection, and hear
// that it should stop. One per attempt, alive until the handler's coroutine returns; used on
// the worker's loop only. docs/cpp-api.md, "The context".
class context {
 public:
  virtual ~context() = default;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // This run's number: 1 for the first attempt (the job's `attempt` + 1).
  int attempt() const { return attempt_; }
  // Runs of this attempt that a lease expiry took back before (a worker died or stalled).
  int stalls() const { return stalls_; }
  // When forq gives up on this attempt (the queue's `timeout`; the cancellation below fires
  // then): none when no timeout is set.
  std::optional<std::chrono::system_clock::time_point> deadline() const { return deadline_; }

  // Cancellation. Forq cancels an attempt when its deadline passes (the queue's
  // attempt_timeout) or when the worker leaves after its drain timeout. cancelled() says whether
  // that happened and cancel_reason() why; until_cancelled() completes then, for a handler that
  // stops its own work its own way (the exec handler signals its process group). On a queue
  // with an attempt_timeout the attempt's coroutine is also bound to a cancellation slot, so
  // whatever the handler awaits on Asio completes with operation_aborted (thrown, by default)
  // at once (binding costs every job, so queues without a timeout are not bound). A handler that
  // returns a success after a cancel has still succeeded; any other outcome, or an exception, after
  // a cancel ends as the cancel says (a timeout: retried per policy).
  bool cancelled() const { return !cancel_reason_.empty(); }
  const std::string& cancel_reason() const { return cancel_reason_; }
  virtual boost::asio::awaitable<void> until_cancelled() = 0;

  // Reports progress: any JSON text of at most max_progress bytes (else invalid_value, and
  // nothing changes). The latest value is written to Redis within ~100 ms (values reported
  // faster replace each other: a chatty handler costs Redis one write per 100 ms per worker),
  // shown by `forq job` and GET /v1/jobs/{id} while the attempt runs, and cleared when it ends.
  // Best effort: a write Redis refuses is not retried.
  virtual expected<> progress(std::string_view json) = 0;
  static constexpr std::size_t max_progress = 4096;

  // Enqueues a job (forq::queue::enqueue) on the worker's own command connection: no
  // connection of the handler's own, pipelined with the worker's traffic.
  virtual boost::asio::awaitable<expected<enqueue_result>> enqueue(std::string_view queue,
                                                                   const new_job& j) = 0;

 protected:
  context() = default;
  int attempt_ = 1, stalls_ = 0;
  std::optional<std::chrono::system_clock::time_point> deadline_;
  std::string cancel_reason_; // empty: not cancelled
};

// Nothing, or errc::invalid_value saying why `json` cannot be a job's progress: not JSON text,
// or over context::max_progress bytes. The one check of every way progress comes in (the
// context, an exec command's fd 3, the HTTP API).
expected<> check_progress(std::string_view json);

// A handler runs one attempt of a job. It must not outlive the consumer, nor the event loop it
// runs on (the http handler keeps that loop's connections), and must not keep `ctx` past its
// return; an exception it throws counts as a failed attempt (retried per policy) with the
// exception's message.
using handler = std::function<boost::asio::awaitable<outcome>(const delivered_job&, context&)>;
using handler_map = std::map<std::string, handler, std::less<>>;

} // namespace forq::queue
