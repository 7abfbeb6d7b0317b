#include "utf8.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>

namespace forq {

namespace {

// The length of the well-formed UTF-8 sequence at s[i], or 0 if there is none (RFC 3629's
// table: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_at(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto c0 = b(i);
  if (c0 < 0x80) return 1;
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return k < s.size() && b(k) >= lo && b(k) <= hi;
  };
  if (c0 >= 0xC2 && c0 <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c0 == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if ((c0 >= 0xE1 && c0 <= 0xEC) || c0 == 0xEE || c0 == 0xEF)
    return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c0 == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c0 == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c0 >= 0xF1 && c0 <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c0 == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

} // namespace

bool is_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_at(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_at(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD"; // U+FFFD
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    auto n = utf8_at(s, i);
    if (n == 0 || c < 0x20 || c == 0x7f) {
      switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
      ++i;
      continue;
    }
    if (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) <= 0x9f) { // C1: U+0080..9F
      auto v = static_cast<unsigned char>(s[i + 1]);
      out += "\\u00";
      out += hex[v >> 4];
      out += hex[v & 15];
      i += 2;
      continue;
    }
    if (c == '\\') out += '\\'; // so an escape in the text cannot pass for one of these
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

namespace {

// boost::json::serialize writes every double with an exponent (60 as 6E1, 2.5 as 2.5E0);
// people and most parsers' users expect 60 and 2.5. Numbers are written here; strings and keys
// are escaped by Boost.JSON.
void write(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
  case boost::json::kind::null:
    out += "null";
    return;
  case boost::json::kind::bool_:
    out += v.get_bool() ? "true" : "false";
    return;
  case boost::json::kind::int64:
    out += std::to_string(v.get_int64());
    return;
  case boost::json::kind::uint64:
    out += std::to_string(v.get_uint64());
    return;
  case boost::json::kind::double_: {
    double d = v.get_double();
    if (!std::isfinite(d)) { // JSON has no infinity or NaN
      out += "null";
      return;
    }
    // The shortest digits that read back; without an exponent where people write none
    // (10000000, 0.001), with one for the very large and very small (1e+300).
    char buf[64];
    const double a = std::fabs(d);
    auto [end, ec] = (a == 0 || (a >= 1e-6 && a < 1e15))
                         ? std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof buf, d);
    out.append(buf, ec == std::errc{} ? end : buf);
    return;
  }
  case boost::json::kind::string:
    out += boost::json::serialize(v.get_string());
    return;
  case boost::json::kind::array: {
    out += '[';
    bool first = true;
    for (const auto& e : v.get_array()) {
      if (!first) out += ',';
      first = false;
      write(out, e);
    }
    out += ']';
    return;
  }
  case boost::json::kind::object: {
    out += '{';
    bool first = true;
    for (const auto& [k, e] : v.get_object()) {
      if (!first) out += ',';
      first = false;
      out += boost::json::serialize(boost::json::string(k));
      out += ':';
      write(out, e);
    }
    out += '}';
    return;
  }
  }
}

} // namespace

std::string serialize_utf8(const boost::json::value& v) {
  std::string text;
  write(text, v);
  return is_utf8(text) ? text : to_utf8(text);
}

} // namespace forq
