#pragma once

#include "forq/config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace forq::cli {

// Each returns the process exit code (forq/exit_codes.hpp).

// `forq serve`: the long-running service.
int serve(const config& cfg);

// The operators' commands (ops.cpp).
struct enqueue_args {
  std::string queue = "default";
  std::string handler;
  std::optional<std::string> id;
  std::optional<std::string> payload; // none: NDJSON on stdin, one payload per line
  long long delay_ms = 0;
  int priority = 0;
  int attempts = 0; // 0: the queue's policy
};
int enqueue(const config& cfg, const enqueue_args& a);
int queues(const config& cfg, bool as_json);
int job(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
        bool as_json);
struct dead_args {
  std::string action; // list | retry | purge
  std::string queue = "default";
  std::vector<std::string> ids; // retry/purge: none = every dead job
  std::size_t limit = 100;      // list
  bool json = false;
};
int dead(const config& cfg, const dead_args& a);
int pause(const config& cfg, const std::string& queue, bool paused);
// max == 0: remove the limit.
int rate_limit(const config& cfg, const std::string& queue, long long max, long long per_ms);

} // namespace forq::cli
