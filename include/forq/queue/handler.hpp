#pragma once

// What a handler is: the job it gets (delivered_job), what it says (outcome), and its type.
// All a handler author needs (forq/forq.hpp), without the consumer's machinery.

#include "forq/queue/retry.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
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
  std::vector<std::pair<std::string, std::string>> fields; // every field, as received
};

// What a handler says about one attempt.
struct outcome {
  enum class kind { done, retry, fail };
  kind what = kind::done;
  std::string text; // done: the result (JSON text); retry/fail: the error, for an operator
  std::optional<std::chrono::milliseconds> retry_after; // retry: the handler's own delay

  static outcome success(std::string result = "null") {
    return {kind::done, std::move(result), {}};
  }
  // Worth another attempt, after the policy's backoff (or `after`).
  static outcome retry_later(std::string error,
                             std::optional<std::chrono::milliseconds> after = std::nullopt) {
    return {kind::retry, std::move(error), after};
  }
  // Retrying cannot help: dead at once, with this reason.
  static outcome failure(std::string error) { return {kind::fail, std::move(error), {}}; }
};

// A handler runs one attempt of a job. It must not outlive the consumer, nor the event loop it
// runs on (the http handler keeps that loop's connections); an exception it
// throws counts as a failed attempt (retried per policy) with the exception's message.
using handler = std::function<boost::asio::awaitable<outcome>(const delivered_job&)>;
using handler_map = std::map<std::string, handler, std::less<>>;

} // namespace forq::queue
