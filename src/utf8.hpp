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
// `s` safe to print on a terminal or in a line of text: control characters (C0 but for none,
// DEL, C1) and bytes that are not UTF-8 are written as escapes (\n, \t, \r, \\, \xNN,
// \u0080..\u009f), so what a job carries cannot move the cursor, recolour the screen or
// forge a line. Other text comes back unchanged.
std::string printable(std::string_view s);
// JSON text of `v` as forq writes it everywhere: valid UTF-8 whatever bytes its strings hold
// (bytes that are not UTF-8 can only stand inside strings, so replacing them keeps the JSON
// well-formed), and numbers as people write them (60, 2.5, 1000; not Boost's 6E1, 2.5E0).
std::string serialize_utf8(const boost::json::value& v);

} // namespace forq
