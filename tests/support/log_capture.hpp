#pragma once

#include "log.hpp"

#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <string>

namespace forq::test {

// While alive, forq's log lines (text format, info and up) go here instead of stderr, so a test
// can assert the operator-visible lines. Restores stderr logging when destroyed.
class log_capture {
 public:
  log_capture() {
    init_logging(log_format::text, log_level::info, "test",
                 std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
  }
  ~log_capture() { init_logging(log_format::text, log_level::info); }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;

  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

} // namespace forq::test
