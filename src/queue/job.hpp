#pragma once

#include "forq/queue/handler.hpp"
#include "forq/queue/retry.hpp"
#include "forq/redis/reply.hpp"
#include "utf8.hpp"

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

// (utf8.hpp: the queue layer's records are checked and written with these.)
using forq::is_utf8;
using forq::serialize_utf8;
using forq::to_utf8;

// Job ids (docs/protocol.md, "Job ids"). A first attempt's id is its stream entry id in the
// priority-0 stream and `<entry id>-p<N>` in stream:p<N> (entry ids are unique per stream only).
std::string first_attempt_id(std::string_view entry_id, int priority);
// The entry id and priority a generated first-attempt id names, or nothing (a caller's id, a
// delayed job's `<ms>-d<n>`).
std::optional<std::pair<std::string, int>> entry_of(std::string_view job_id);
// Whether a caller-given id has the shape of an id forq generates (`<ms>-<seq>`,
// `<ms>-<seq>-p<N>`, `<ms>-d<n>`): such ids are refused, so they cannot meet a generated one.
bool looks_generated(std::string_view id);

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
// waits in `delayed:jobs` or `dead:jobs` (docs/protocol.md). Always valid UTF-8 JSON: a field
// whose name or value is not UTF-8 is shown with U+FFFD in place of the bad bytes, and kept
// exactly in `raw_hex` ([[shown name, name in hex, value in hex], ...]), from which promotion
// and `forq dead retry` restore the bytes as they came.
std::string to_json(const delivered_job& j, int attempt,
                    const std::vector<std::pair<std::string, std::string>>& extra);

// The job's `errors` field after this failed attempt: the errors its attempts gave, oldest
// first, as a JSON array of {"attempt", "at_ms", "error"} (each error's first 1,000 bytes), the
// last 10 of them; a previous `errors` that is not such an array is started again.
inline constexpr std::size_t errors_kept = 10, error_bytes_kept = 1000;
std::string with_error(const delivered_job& j, int attempt, std::string_view error,
                       std::int64_t at_ms);

// The job as handlers outside the process get it (exec on stdin, http as the POST body):
// {"id", "queue", "handler", "attempt" (this one, from 1), "stalls", "deadline_ms" (when the
// attempt is given up, ms since the epoch), "payload" (JSON; text kept as a string)}.
// docs/handlers.md.
std::string handoff_json(const delivered_job& j, std::int64_t deadline_ms);

// A cancel mark's words for the handler (context::cancel_reason): "cancelled by <by>: <reason>"
// from the mark's JSON ({"by", "at_ms", "reason"}; docs/job-control.md).
std::string cancel_words(std::string_view mark);

// How a consumer lives through a Redis that refuses writes (-OOM, -READONLY, -MISCONF): the
// first refusal of a spell is logged, the rest are not; retries back off from 100 ms, doubling
// to 1 s; the first write accepted after a spell ends it with one line. Leased jobs stay
// pending meanwhile (nothing is acknowledged or lost). No sockets: unit-tested on its own.
class refusal_spell {
 public:
  struct step {
    std::string log; // empty: nothing worth a line
    std::chrono::milliseconds wait;
  };
  // A write of queue `queue` was refused with `reason` (Redis's error text).
  step refused(std::string_view queue, std::string_view reason);
  // A write went through: the line that ends a spell, or empty if there was none.
  std::string accepted(std::string_view queue);
  bool active() const { return active_; }

 private:
  bool active_ = false;
  int refusals_ = 0;
};

} // namespace forq::queue
