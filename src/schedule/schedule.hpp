#pragma once

// Schedules (docs/schedules.md): recurring jobs of a queue, kept in Redis under the queue's hash
// tag, each slot turned into at most one job by a script (schedule_claim.lua) that any worker's
// keeper may run, with no leader. Whether a slot is due is Redis's clock's call (TIME).

#include "forq/error.hpp"
#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"
#include "schedule/cron.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forq::schedule {

// What becomes of the slots that came due while nothing ticked (forq or Redis was down):
//   skip    only a slot at most a second late runs;
//   latest  the latest of them runs if it is at most `grace` late (60 s unless given);
//   all     each runs, oldest first, at most 100 (older ones are skipped).
enum class missed_policy { skip, latest, all };

struct definition {
  std::string name;  // 1 to 128 of A-Z a-z 0-9 _ . : - (unique within the queue)
  std::string queue; // the queue whose keeper ticks it and that gets its jobs
  // One of the two: a cron expression (with `zone`, "" for UTC), or a fixed interval aligned to
  // the clock (every 5 minutes: at :00, :05, ... UTC).
  std::string cron_text;
  std::string zone;
  std::chrono::milliseconds every{0};
  queue::new_job job; // handler, payload, priority, max_attempts (the id is the schedule's)
  missed_policy missed = missed_policy::latest;
  std::chrono::milliseconds grace{60000};
};

// The definition's JSON text, as stored and as `forq schedule list --json` shows it, and back.
std::string to_json(const definition& d);
// Or errc::invalid_value naming the field.
expected<definition> from_json(std::string_view text, std::string_view queue);
// Everything a definition says is checked: the name, the cron expression and zone or the
// interval (1 s to 1 year), the job (check_job), the policy.
expected<> check(const definition& d);

// The first slot strictly after `after_ms` (ms since the epoch, UTC), or nothing.
std::optional<std::int64_t> next_slot(const definition& d, std::int64_t after_ms);

// How often a keeper looks for schedules added or changed when none of its queue's is due
// sooner. A schedule added or changed starts with its first slot at least this far away, so
// the keepers have seen it by then.
inline constexpr std::chrono::milliseconds look_every{5000};

// The job id of a slot: "schedule:<name>:<slot ms>", the same on every host.
std::string job_id(const definition& d, std::int64_t slot_ms);

// Adds or replaces a schedule, atomically. The same definition again changes nothing (its
// version and next slot stay); a changed one gets a new version, and its first slot is the
// first at least look_every from now (Redis's clock).
// Completes with the version.
boost::asio::awaitable<expected<std::int64_t>> upsert(redis::connection& conn, const definition& d);
// Completes with whether it existed. Its version counter stays, so a schedule added again
// under the same name never reuses a version.
boost::asio::awaitable<expected<bool>> remove(redis::connection& conn, std::string_view queue,
                                              std::string_view name);

struct status {
  definition def;
  std::int64_t version = 0;
  std::optional<std::int64_t> next_ms, last_ms; // next slot; the last slot that ran or was skipped
  std::string last_id;                          // the last job it made
  std::int64_t runs = 0, skipped = 0;
};
boost::asio::awaitable<expected<std::vector<status>>> list(redis::connection& conn,
                                                           std::string_view queue);

// One look of a queue's keeper: runs every slot due now (Redis's TIME), as its policy says,
// and completes with how long until the next slot (at most `longest`: new schedules are seen
// then). Errors are logged and end the look early.
boost::asio::awaitable<std::chrono::milliseconds>
tick(redis::connection& conn, std::string_view queue, std::chrono::milliseconds longest);

} // namespace forq::schedule
