#pragma once

// Schedules (docs/schedules.md): recurring jobs of a queue, kept in Redis under the queue's hash
// tag, each slot turned into at most one job by a script (schedule_claim.lua) that any worker's
// keeper may run, with no leader. Whether a slot is due is Redis's clock's call (TIME).

#include "forq/error.hpp"
#include "forq/queue/producer.hpp"
#include "forq/redis/connection.hpp"
#include "schedule/cron.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

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
// What a slot does while the schedule's previous run is still queued or running:
//   allow      runs anyway;
//   skip       is skipped (counted, reason "overlap");
//   queue_one  waits for the previous run to finish, then runs once (later slots that pass
//              meanwhile are skipped); skipped at once if a run is already waiting to start.
enum class overlap_policy { allow, skip, queue_one };

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
  overlap_policy overlap = overlap_policy::allow;
  // Slots before `start_ms` or after `end_ms` (ms since the epoch) do not exist; after `limit`
  // runs the schedule ends (it stays listed, with no next run).
  std::optional<std::int64_t> start_ms, end_ms, limit;
  // Written by the `schedules` setting (reconcile): a schedule the setting no longer lists is
  // removed; one added by hand (CLI, HTTP, C++) is never touched by it.
  bool from_config = false;
};

std::string_view to_string(missed_policy m);
std::string_view to_string(overlap_policy o);
std::optional<missed_policy> missed_from(std::string_view text);
std::optional<overlap_policy> overlap_from(std::string_view text);

// The definition's JSON text, as stored and as `forq schedule list --json` shows it, and back.
std::string to_json(const definition& d);
// Or errc::invalid_value naming the field. `strict` (what a person gives: the setting, the HTTP
// API) refuses a field it does not know; what Redis holds is read leniently, so a definition a
// newer forq wrote keeps running under an older one during a rolling upgrade.
expected<definition> from_json(std::string_view text, std::string_view queue, bool strict = false);
// A JSON array of definitions, each with its "queue" ("default" if none), as the `schedules`
// setting holds them: each marked from_config; a name twice in a queue is refused.
expected<std::vector<definition>> from_json_list(std::string_view text);
// Everything a definition says is checked: the name, the cron expression and zone or the
// interval (1 s to 1 year), the job (check_job), the policy.
expected<> check(const definition& d);

// Redis's clock (TIME), in ms since the epoch: every schedule decision is by it.
boost::asio::awaitable<expected<std::int64_t>> redis_now(redis::connection& conn,
                                                         redis::exec_options opts = {});

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
// first at least look_every from now (Redis's clock). A paused schedule stays paused.
struct upserted {
  std::string what; // added | changed | unchanged
  std::int64_t version = 0;
};
boost::asio::awaitable<expected<upserted>> upsert(redis::connection& conn, const definition& d,
                                                  redis::exec_options opts = {});
// Completes with whether it existed. Its version counter stays, so a schedule added again
// under the same name never reuses a version.
boost::asio::awaitable<expected<bool>> remove(redis::connection& conn, std::string_view queue,
                                              std::string_view name, redis::exec_options opts = {});

// Pause: no slot runs (nor is counted as missed) until resume, whose first slot is at least
// look_every away. Completes with whether the schedule exists.
boost::asio::awaitable<expected<bool>> pause(redis::connection& conn, std::string_view queue,
                                             std::string_view name, redis::exec_options opts = {});
boost::asio::awaitable<expected<bool>> resume(redis::connection& conn, std::string_view queue,
                                              std::string_view name, redis::exec_options opts = {});
// One run now, besides its slots (id "schedule:<name>:now:<ms>"), counted as a run and as the
// last job (so the overlap policy sees it). Completes with the job id, or nothing if the
// schedule does not exist.
boost::asio::awaitable<expected<std::optional<std::string>>> run_now(redis::connection& conn,
                                                                     std::string_view queue,
                                                                     std::string_view name,
                                                                     redis::exec_options opts = {});

struct status {
  definition def;
  std::int64_t version = 0;
  std::optional<std::int64_t> next_ms, last_ms; // next slot; the last slot that ran or was skipped
  std::string last_id;                          // the last job it made
  std::int64_t runs = 0, skipped = 0;
  std::int64_t skipped_missed = 0, skipped_overlap = 0; // `skipped` by reason
  std::optional<std::int64_t> last_late_ms; // how long after its slot the last run was enqueued
  bool paused = false;
  bool held = false;      // overlap = queue-one: a slot waits for the previous run to end
  std::string unreadable; // why its definition cannot be read here (then only name and queue)
  // active | paused | ended (no next slot: past its end or its limit) | unreadable
  std::string state() const;
  // The definition's fields, its queue and all of the above: `forq schedule list --json` and
  // the HTTP API print this one shape (and take it back: from_json reads it).
  boost::json::object to_json() const;
};
// `opts`: as forq::client's (a deadline for the HTTP API).
boost::asio::awaitable<expected<std::vector<status>>>
list(redis::connection& conn, std::string_view queue, redis::exec_options opts = {});

// The `schedules` setting made true: every definition in `defs` (from_config set) added or
// changed, and every schedule that setting added before and no longer lists removed, in the
// queues of `defs` and `queues`. One log line per change; a host whose setting matches what is
// in Redis changes nothing. Completes with the first error (the rest is done anyway).
boost::asio::awaitable<expected<>> reconcile(redis::connection& conn,
                                             const std::vector<definition>& defs,
                                             const std::vector<std::string>& queues);

// One look of a queue's keeper: runs every slot due now (Redis's TIME), as its policy says,
// and completes with how long until the next slot (at most `longest`: new schedules are seen
// then). Errors are logged and end the look early.
boost::asio::awaitable<std::chrono::milliseconds>
tick(redis::connection& conn, std::string_view queue, std::chrono::milliseconds longest);

} // namespace forq::schedule
