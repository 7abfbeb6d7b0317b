#include "log.hpp"

#include "utf8.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <optional>
#include <unistd.h>

namespace forq {
namespace {

std::string& role_storage() {
  static std::string role = "master";
  return role;
}

// The structured field of the line being logged by log_info_with (name, JSON text), if any.
struct field {
  std::string_view name, json;
};
std::optional<field>& current_field() {
  static std::optional<field> f;
  return f;
}

spdlog::level::level_enum to_spdlog(log_level l) {
  switch (l) {
  case log_level::trace:
    return spdlog::level::trace;
  case log_level::debug:
    return spdlog::level::debug;
  case log_level::info:
    return spdlog::level::info;
  case log_level::warn:
    return spdlog::level::warn;
  case log_level::error:
    return spdlog::level::err;
  case log_level::critical:
    return spdlog::level::critical;
  case log_level::off:
    return spdlog::level::off;
  }
  return spdlog::level::info;
}

// "2026-11-23T17:52:07.123Z": UTC, millisecond precision, the same in both formats.
void append_time(spdlog::log_clock::time_point tp, spdlog::memory_buf_t& dest) {
  auto since = tp.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  std::time_t t = secs.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(dest), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ms);
}

std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
  case spdlog::level::trace:
    return "trace";
  case spdlog::level::debug:
    return "debug";
  case spdlog::level::info:
    return "info";
  case spdlog::level::warn:
    return "warn";
  case spdlog::level::err:
    return "error";
  case spdlog::level::critical:
    return "critical";
  default:
    return "off";
  }
}

// 2026-11-23T17:52:07.123Z info  [master 4242] embedded redis-server ready
class text_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append_time(msg.time, dest);
    fmt::format_to(std::back_inserter(dest), " {:<5} [{} {}] ", level_name(msg.level),
                   role_storage(), ::getpid());
    // What a job carries (an id, a handler's error) may be in the message: escaped, so it
    // cannot forge a line or send a terminal escape (JSON lines are escaped by the format).
    auto text = printable(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
    if (const auto& f = current_field()) {
      dest.push_back(' ');
      dest.append(f->name.data(), f->name.data() + f->name.size());
      dest.push_back('=');
      dest.append(f->json.data(), f->json.data() + f->json.size());
    }
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<text_formatter>();
  }
};

// {"time":"...","level":"info","role":"master","pid":4242,"msg":"..."}
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto append = [&](std::string_view s) { dest.append(s.data(), s.data() + s.size()); };
    append(R"({"time":")");
    append_time(msg.time, dest);
    append(R"(","level":")");
    append(level_name(msg.level));
    append(R"(","role":)");
    append(boost::json::serialize(boost::json::string(role_storage())));
    fmt::format_to(std::back_inserter(dest), R"(,"pid":{},"msg":)", ::getpid());
    // A message may quote bytes a foreign producer wrote: one line of valid JSON regardless.
    append(serialize_utf8(
        boost::json::string(std::string_view(msg.payload.data(), msg.payload.size()))));
    if (const auto& f = current_field()) {
      append(",");
      append(boost::json::serialize(boost::json::string(f->name)));
      append(":");
      append(f->json);
    }
    append("}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

} // namespace

void init_logging(log_format format, log_level level, std::string role,
                  std::shared_ptr<spdlog::sinks::sink> sink) {
  role_storage() = std::move(role);
  auto logger = std::make_shared<spdlog::logger>("forq", std::move(sink));
  if (format == log_format::json)
    logger->set_formatter(std::make_unique<json_formatter>());
  else
    logger->set_formatter(std::make_unique<text_formatter>());
  logger->set_level(to_spdlog(level));
  // Warnings and errors reach the terminal or collector at once; info lines ride the buffer.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void init_logging(log_format format, log_level level, std::string role) {
  // One thread per process: the single-threaded sink needs no lock.
  init_logging(format, level, std::move(role), std::make_shared<spdlog::sinks::stderr_sink_st>());
}

void log_info_with(std::string_view msg, std::string_view name, std::string_view json) {
  current_field() = field{name, json};
  spdlog::info("{}", msg);
  current_field().reset();
}

void set_log_role(std::string role) {
  role_storage() = std::move(role);
}

} // namespace forq
