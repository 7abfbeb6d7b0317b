#pragma once

#include "forq/config.hpp"

#include <spdlog/sinks/sink.h>

#include <memory>
#include <string>

namespace forq {

// Sets up the process-wide spdlog logger: one line per event on stderr, as text for people or
// JSON lines for collectors, each tagged with the process role and pid. Call once at start; call
// set_log_role() in each forked child ("worker 3"). The pid is read at every line, so it is
// right after fork without any call.
void init_logging(log_format format, log_level level, std::string role = "master");

// Like init_logging, writing to the given sink instead of stderr (for tests).
void init_logging(log_format format, log_level level, std::string role,
                  std::shared_ptr<spdlog::sinks::sink> sink);

void set_log_role(std::string role);

} // namespace forq
