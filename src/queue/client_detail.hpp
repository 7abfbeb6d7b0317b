#pragma once

// What the two halves of forq::client (client.cpp: enqueue, figures, the dead set's writes,
// pause and limits; client_jobs.cpp: reading jobs, by id, by state, by text) share: how a job's
// stored forms are read. Private to src/queue.

#include "forq/client.hpp"
#include "queue/protocol.hpp"
#include "utf8.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace forq::client_detail {

namespace json = boost::json;
using boost::system::error_code;
template <class T>
using result = expected<T>;

inline const std::string group(queue::keys::group);

inline std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// A job record (delayed:jobs, dead:jobs, results:data) as an object; empty when unreadable.
inline json::object parse_object(std::string_view text) {
  error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

inline std::optional<std::string> string_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->as_string());
  return serialize_utf8(*v);
}

// Fills what a job's fields say (stream entry fields or a JSON record of strings): the one
// reading of a job's fields behind every job_info.
inline void take_fields(job_info& info, const json::object& o) {
  for (const auto& [key, value] : o) {
    const std::string_view k = key;
    auto text = string_field(o, k).value_or("");
    if (k == "handler")
      info.handler = text;
    else if (k == "payload")
      info.payload = text;
    else if (k == "attempt")
      info.attempts = static_cast<int>(to_int(text));
    else if (k == "last_error")
      info.last_error = text;
    else if (k == "reason")
      info.reason = text;
    else if (k == "errors") {
      error_code ec;
      auto list = json::parse(text, ec);
      if (!ec && list.is_array() &&
          std::all_of(list.as_array().begin(), list.as_array().end(),
                      [](const json::value& e) { return e.is_object(); }))
        info.errors = std::move(list.as_array());
      else
        info.other_fields.emplace_back(std::string(k), text); // not forq's: shown as it is
    } else if (k == "priority")
      info.priority = static_cast<int>(to_int(text));
    else if (k == "max_attempts")
      info.max_attempts = static_cast<int>(to_int(text));
    else if (k == "retry")
      info.retry = text;
    else if (k == "waitable")
      info.waitable = text == "1";
    else if (k == "cancelled_by")
      info.cancelled_by = text;
    else if (k == "cancel_reason")
      info.cancel_reason = text;
    else if (k == "cancelled_ms")
      info.finished_ms = to_int(text);
    else if (k != "id" && k != "raw_hex") // (raw_hex: the exact bytes, for retry only)
      info.other_fields.emplace_back(std::string(k), text);
  }
}

inline json::object entry_fields(const redis::reply& entry) {
  json::object o;
  if (!entry.is_array() || entry.elements().size() != 2) return o;
  const auto& kv = entry.elements()[1].elements();
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
    o[kv[i].str()] = kv[i + 1].str();
  return o;
}

// A stream entry id as (ms, seq) for ordering; (0, 0) for anything else.
inline std::pair<std::uint64_t, std::uint64_t> entry_order(std::string_view id) {
  auto dash = id.find('-');
  if (dash == std::string_view::npos) return {0, 0};
  std::uint64_t ms = 0, seq = 0;
  std::from_chars(id.data(), id.data() + dash, ms);
  std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  return {ms, seq};
}

} // namespace forq::client_detail
