#pragma once

// forq's handlers (docs/handlers.md): the built-ins, `exec` (a command per job) and `http` (a
// POST per job to your app).

#include "forq/names.hpp"
#include "forq/queue/handler.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace forq::handlers {

// The handlers every forq has, for trying forq out, tests and benchmarks: `noop` succeeds with
// no result, `echo` returns its payload, `sleep` waits {"ms": N} (at most 10 minutes) and
// succeeds, `fail` fails the first {"times": N} attempts (retry later) and then succeeds.
queue::handler_map builtins();
// is_builtin, check_name and check_http_url: forq/names.hpp.

struct exec_options {
  // argv: command[0] is looked up in PATH; no shell unless you run one ("/bin/sh", "-c", ...).
  std::vector<std::string> command;
  std::chrono::milliseconds timeout{60000}; // then the whole process group is killed
  int retry_exit_code = 75;                 // EX_TEMPFAIL: "try again later"
  int fail_exit_code = 65;                  // EX_DATAERR: "fail now, do not retry"
  // A cancelled attempt's process group gets SIGTERM, then SIGKILL this long after.
  std::chrono::milliseconds cancel_grace{5000};
  std::size_t max_output = 1u << 20; // stdout kept as the result; more is cut, with a note
  std::size_t stderr_tail = 2048;    // the end of stderr, the reason of a failure
};

// One process per attempt, in its own process group: the job as JSON on stdin
// ({"id", "queue", "handler", "attempt", "stalls", "deadline_ms", "payload"}), FORQ_JOB_ID,
// FORQ_ATTEMPT and FORQ_QUEUE in its environment, and file descriptor 3 open for progress: each
// line written there is a JSON value reported as the job's progress (context::progress). Exit
// 0: done, stdout is the result (JSON, or kept as a JSON string). Exit retry_exit_code: retry
// later. Exit fail_exit_code: dead at once, no retry. Another exit or a signal: a failed attempt
// (retried per policy) with the exit and the tail of stderr as the reason. Over the timeout
// (or the queue's, whichever is shorter): the group is killed and the attempt failed. Cancelled
// (context): SIGTERM to the group, SIGKILL after cancel_grace. A command that cannot be
// started: dead at once. Never blocks the loop: pipes and the exit are awaited (pidfd), and the
// group is killed when the command ends. Using it sets SIGPIPE to ignored in this process.
queue::handler exec(exec_options options);

struct http_options {
  std::string url;                          // http://host[:port]/path
  std::chrono::milliseconds timeout{60000}; // connect + request + reply
  std::size_t max_output = 1u << 20;        // the reply body kept as the result
};

// POSTs the job (the exec handler's JSON) to the URL over kept-alive connections, with headers
// Forq-Job-Id, Forq-Attempt, Forq-Stalls, Forq-Queue and Forq-Deadline (ms since the epoch).
// 2xx: done, the body is the result. 408, 429, 5xx, connection errors and timeouts: retry later
// (Retry-After in seconds honoured). Other 4xx: dead at once, no retry, with the status and the
// head of the body. Cancelled (context): the request is abandoned (its connection closed). The
// lease stays renewed while the app works, up to the timeout (or the queue's, if shorter).
queue::handler http(http_options options);

} // namespace forq::handlers
