#pragma once

#include "forq/redis/reply.hpp"
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
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
  std::optional<int> max_attempts;
  int priority = 0;
  std::vector<std::pair<std::string, std::string>> fields; // every field, as received
};

// Whether `text` is one JSON value (nesting at most 32 deep, as boost::json::parse allows), or
// why not. Builds nothing: a validating pass, for the hot path (every fetched payload, every
// result).
boost::system::error_code check_json(std::string_view text);

// An entry of XREADGROUP's reply ([entry id, [field, value, ...]]) as a job, or why it cannot
// be one (the reason a malformed job goes to the dead set with).
std::variant<delivered_job, std::string> parse_entry(std::string_view queue,
                                                     std::string_view stream, int priority,
                                                     const redis::reply& entry);

// The job's fields as a JSON object, with `id`, `attempt` and the given extras set: how a job
// waits in `delayed:jobs` or `dead:jobs` (docs/protocol.md).
std::string to_json(const delivered_job& j, int attempt,
                    const std::vector<std::pair<std::string, std::string>>& extra);

// The job as handlers outside the process get it (exec on stdin, http as the POST body):
// {"id", "queue", "handler", "attempt" (this one, from 1), "payload" (JSON; text kept as a
// string)}. docs/handlers.md.
std::string handoff_json(const delivered_job& j);

struct retry_policy {
  int max_attempts = 3;
  std::chrono::milliseconds backoff{1000};
  bool exponential = true; // base * 2^(attempt-1), with jitter
  std::chrono::milliseconds max_backoff{std::chrono::hours(1)};
};

// What happens to a job whose attempt failed. No sockets: unit-tested on its own.
struct verdict {
  bool retry;                      // else: dead
  std::chrono::milliseconds delay; // retry only
  std::string reason;              // dead only: why, in an operator's words
};

// attempt_made: attempts made including the one that failed (>= 1). permanent: the handler
// said retrying cannot help. retry_after: the handler's own wish (Retry-After), used as is.
verdict decide(const retry_policy& p, int attempt_made, bool permanent, std::string_view error,
               std::optional<std::chrono::milliseconds> retry_after, std::mt19937_64& rng);

} // namespace forq::queue
