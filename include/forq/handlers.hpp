#pragma once

// Handlers that run a job somewhere else (docs/handlers.md): `exec` runs a command per job.
// The built-ins (noop, echo, sleep, fail) live with forq serve (src/cli/worker.cpp).

#include "forq/queue/consumer.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace forq::handlers {

struct exec_options {
  // argv: command[0] is looked up in PATH; no shell unless you run one ("/bin/sh", "-c", ...).
  std::vector<std::string> command;
  std::chrono::milliseconds timeout{60000}; // then the whole process group is killed
  int retry_exit_code = 75;                 // EX_TEMPFAIL: "try again later"
  std::size_t max_output = 1u << 20;        // stdout kept as the result; more is cut, with a note
  std::size_t stderr_tail = 2048;           // the end of stderr, the reason of a failure
};

// One process per attempt, in its own process group: the job as JSON on stdin
// ({"id", "queue", "handler", "attempt", "payload"}), FORQ_JOB_ID, FORQ_ATTEMPT and FORQ_QUEUE in
// its environment. Exit 0: done, stdout is the result (JSON, or kept as a JSON string). Exit
// retry_exit_code: retry later. Another exit or a signal: a failed attempt (retried per policy)
// with the exit and the tail of stderr as the reason. Over the timeout: the group is killed and
// the attempt failed. A command that cannot be started: dead at once. Never blocks the loop:
// pipes and the exit are awaited (pidfd), and the group is killed when the command ends, so
// nothing it started outlives the attempt. Using it sets SIGPIPE to ignored in this process.
queue::handler exec(exec_options options);

} // namespace forq::handlers
