#pragma once

#include <spdlog/sinks/sink.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace forq {

// The two line formats and the levels (the config's `log.format` and `log.level` name them).
enum class log_format { text, json };
enum class log_level { trace, debug, info, warn, error, critical, off };

// Sets up the process-wide spdlog logger: one line per event on stderr, as text for people or
// JSON lines for collectors, each tagged with the process role and pid. Call once at start; call
// set_log_role() in each forked child ("worker 3"). The pid is read at every line, so it is
// right after fork without any call.
void init_logging(log_format format, log_level level, std::string role = "master");

// Like init_logging, writing to the given sink instead of stderr (for tests).
void init_logging(log_format format, log_level level, std::string role,
                  std::shared_ptr<spdlog::sinks::sink> sink);

void set_log_role(std::string role);

// Logs `msg` at info with one structured field whose value is JSON text (valid, from forq's own
// serializer): in the JSON format as a field of the line ("config": {...}), in text after the
// message (` config={...}`). For values a collector should not have to unescape from `msg`.
void log_info_with(std::string_view msg, std::string_view name, std::string_view json);

// "1 job", "3 jobs": a count and its noun, as log lines say them.
inline std::string counted(std::uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

} // namespace forq
