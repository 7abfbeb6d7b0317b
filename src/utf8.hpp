#pragma once

// Text that JSON can carry. Foreign producers may put any bytes in Redis; everything forq writes
// as JSON (records, results, HTTP answers, --json output, JSON log lines) goes through these.

#include <boost/json/fwd.hpp>

#include <string>
#include <string_view>

namespace forq {

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_utf8(std::string_view s);
// `s` with each byte that is not part of well-formed UTF-8 replaced by U+FFFD: text any JSON
// reader accepts. Valid text comes back unchanged.
std::string to_utf8(std::string_view s);
// JSON text of `v` as forq writes it everywhere: valid UTF-8 whatever bytes its strings hold
// (bytes that are not UTF-8 can only stand inside strings, so replacing them keeps the JSON
// well-formed), and numbers as people write them (60, 2.5, 1000; not Boost's 6E1, 2.5E0).
std::string serialize_utf8(const boost::json::value& v);

} // namespace forq
