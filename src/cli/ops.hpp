#pragma once

// The operators' commands (ops.cpp, docs/operations.md): enqueue, queues, job, dead, pause,
// resume, limit. Each returns the process exit code (exit_codes.hpp).

#include "config/config.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forq::cli {

struct enqueue_args {
  std::string queue = "default";
  std::string handler;
  std::optional<std::string> id;
  std::optional<std::string> payload; // none: NDJSON on stdin, one payload per line
  long long delay_ms = 0;
  int priority = 0;
  int attempts = 0;                 // 0: the queue's policy
  std::optional<std::string> retry; // checked by the parser (queue::parse_retry)
  // Wait this long for the job's end and print its result (docs/job-control.md); the job is
  // enqueued waitable. Exit 0 completed, 1 dead or cancelled, 124 still running at the end.
  std::optional<double> wait_s;
  bool waitable = false; // enqueued waitable, not waited for here
};
int enqueue(const config& cfg, const enqueue_args& a);
int queues(const config& cfg, bool as_json);
// With `wait_s`: waits for the job's end first (exit codes as enqueue's --wait).
int job(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
        bool as_json, std::optional<double> wait_s = std::nullopt);
// Cancels a job (docs/job-control.md). Exit 0 cancelled or told, 1 already ended or no such job.
int cancel(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
           const std::string& reason, bool as_json);
// forq events (docs/job-control.md, "Events"): the last `last` events, then with `follow` the
// new ones as they come; or `on` (keeping about `max`) / `off`.
struct events_args {
  std::string queue;
  bool follow = false, json = false;
  std::size_t last = 20;
  bool on = false, off = false, create = false;
  long long max = 10000;
};
int events(const config& cfg, const events_args& a);
struct dead_args {
  std::string action; // list | retry | purge
  std::string queue = "default";
  std::vector<std::string> ids; // retry/purge: none = every dead job
  std::size_t limit = 100;      // list
  bool json = false;
};
int dead(const config& cfg, const dead_args& a);
// pause/resume and limit refuse a queue this Redis does not know (a typo would otherwise set up
// a queue no worker reads) unless `create` says it is meant.
int pause(const config& cfg, const std::string& queue, bool paused, bool create);
// max == 0: remove the limit.
int rate_limit(const config& cfg, const std::string& queue, long long max, long long per_ms,
               bool create);

// forq schedule (schedules.cpp, docs/schedules.md).
struct schedule_args {
  std::string name;
  std::string queue = "default";
  std::string cron, every, tz; // --cron EXPR or --every DURATION; --tz with --cron
  std::string handler;
  std::optional<std::string> payload;
  int priority = 0;
  int attempts = 0;              // 0: the queue's policy
  std::string missed = "latest"; // skip | latest | all
  std::string grace;             // a duration; empty: 60 s
  std::string overlap = "allow"; // allow | skip | queue-one
  std::string start, end;        // RFC 3339 times; empty: none
  long long limit = 0;           // runs at most; 0: no limit
  // The handlers this forq runs (built-ins, the handlers setting, the program's): one outside
  // them may live on another host's workers, so it is warned about, not refused.
  std::vector<std::string> known_handlers;
  std::string default_handler; // the queue's in this configuration's --queues, if any
};
int schedule_add(const config& cfg, const schedule_args& a);
// One queue's schedules, or every queue's (with a QUEUE column) when `queue` is not given.
int schedule_list(const config& cfg, const std::optional<std::string>& queue, bool as_json);
// remove | pause | resume | run
int schedule_act(const config& cfg, const std::string& action, const std::string& queue,
                 const std::string& name);
// "30s", "5m", "1h", "1d", "250ms": 1 ms to 366 days; nothing for anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

} // namespace forq::cli
