// Redis Cluster's routing rules, without I/O (cluster.hpp): key slots, the key of each
// command, what a reply says about where to send it. Unit-tested in cluster_route_test.cpp.
#include "redis/cluster.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace forq::redis {

namespace {

constexpr std::array<std::uint16_t, 256> crc16_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    t[i] = crc;
  }
  return t;
}
constexpr auto crc16_xmodem = crc16_table();

std::uint16_t crc16(std::string_view s) {
  std::uint16_t crc = 0;
  for (unsigned char c : s)
    crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_xmodem[((crc >> 8) ^ c) & 0xFF]);
  return crc;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

// Commands forq (or a program through forq's connection) sends that name no key.
bool keyless(std::string_view name) {
  for (std::string_view k :
       {"PING",    "WAIT",      "CLIENT",     "SCRIPT",    "INFO",         "TIME",     "CLUSTER",
        "ROLE",    "ASKING",    "READONLY",   "READWRITE", "COMMAND",      "CONFIG",   "DBSIZE",
        "ECHO",    "HELLO",     "AUTH",       "SELECT",    "MULTI",        "EXEC",     "DISCARD",
        "UNWATCH", "FUNCTION",  "SLOWLOG",    "LATENCY",   "LASTSAVE",     "FLUSHALL", "FLUSHDB",
        "SCAN",    "RANDOMKEY", "SAVE",       "BGSAVE",    "BGREWRITEAOF", "DEBUG",    "MONITOR",
        "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "QUIT",      "RESET",        "SWAPDB",   "ACL",
        "MODULE",  "SHUTDOWN",  "LOLWUT",     "SENTINEL",  "REPLICAOF",    "SLAVEOF",  "FAILOVER",
        "WAITAOF"})
    if (iequals(name, k)) return true;
  return false;
}

} // namespace

std::string node_address(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

bool split_node_address(std::string_view text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  unsigned p = 0;
  auto digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
  if (ec != std::errc{} || end != digits.data() + digits.size() || p == 0 || p > 65535)
    return false;
  host = std::string(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  port = static_cast<std::uint16_t>(p);
  return true;
}

std::uint16_t key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) & (cluster_slots - 1));
}

std::optional<std::vector<command_span>> split_commands(std::string_view p) {
  std::vector<command_span> out;
  std::size_t at = 0;
  // A decimal number after `prefix` and before "\r\n", at `at`; moves past it.
  auto number = [&](char prefix, std::size_t& n) {
    if (at >= p.size() || p[at] != prefix) return false;
    auto end = p.find("\r\n", at);
    if (end == std::string_view::npos) return false;
    auto [ptr, ec] = std::from_chars(p.data() + at + 1, p.data() + end, n);
    if (ec != std::errc{} || ptr != p.data() + end) return false;
    at = end + 2;
    return true;
  };
  std::vector<std::string_view> args;
  while (at < p.size()) {
    command_span c;
    c.offset = at;
    std::size_t argc = 0;
    if (!number('*', argc) || argc == 0) return std::nullopt;
    args.clear();
    for (std::size_t i = 0; i < argc; ++i) {
      std::size_t len = 0;
      if (!number('$', len) || at + len + 2 > p.size()) return std::nullopt;
      args.push_back(p.substr(at, len));
      at += len + 2;
    }
    c.size = at - c.offset;
    const auto name = args[0];
    std::optional<std::size_t> key;
    if (iequals(name, "EVAL") || iequals(name, "EVALSHA") || iequals(name, "EVAL_RO") ||
        iequals(name, "EVALSHA_RO") || iequals(name, "FCALL") || iequals(name, "FCALL_RO")) {
      if (args.size() > 3 && args[2] != "0") key = 3;
    } else if (iequals(name, "XREAD") || iequals(name, "XREADGROUP")) {
      // Options in order (GROUP's two words, COUNT's and BLOCK's values), as Redis reads them:
      // a group or consumer named "streams" is not the keyword.
      for (std::size_t i = iequals(name, "XREADGROUP") ? 4 : 1; i + 1 < args.size();) {
        if (iequals(args[i], "STREAMS")) {
          key = i + 1;
          break;
        }
        i += iequals(args[i], "COUNT") || iequals(args[i], "BLOCK") ? 2 : 1;
      }
    } else if (iequals(name, "XINFO") || iequals(name, "OBJECT") || iequals(name, "MEMORY")) {
      if (args.size() > 2) key = 2;
    } else if (!keyless(name) && args.size() > 1) {
      key = 1;
    }
    if (key) c.slot = key_slot(args[*key]);
    out.push_back(c);
  }
  return out;
}

redirect read_redirect(const reply& r) {
  redirect out;
  if (!r.is_error()) return out;
  auto code = r.error_code();
  auto text = r.str();
  if (code == "MOVED" || code == "ASK") {
    // MOVED 3999 127.0.0.1:6381 (the host may be empty: the node that answered)
    auto first = text.find(' ');
    auto second = first == std::string_view::npos ? first : text.find(' ', first + 1);
    if (second == std::string_view::npos) return out;
    auto slot_text = text.substr(first + 1, second - first - 1);
    unsigned slot = 0;
    auto [ptr, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
    if (ec != std::errc{} || slot >= cluster_slots) return out;
    if (!split_node_address(text.substr(second + 1), out.host, out.port)) return out;
    out.slot = static_cast<std::uint16_t>(slot);
    out.what = code == "MOVED" ? redirect::kind::moved : redirect::kind::ask;
    return out;
  }
  if (code == "TRYAGAIN") {
    out.what = redirect::kind::wait;
    return out;
  }
  // A demoted primary, a blocked read its failover ended, a slot nobody serves now: ask for the
  // slots again, then send it again.
  if (code == "CLUSTERDOWN" || code == "READONLY" ||
      (code == "UNBLOCKED" && text.find("instance state changed") != std::string_view::npos)) {
    out.what = redirect::kind::refresh;
    return out;
  }
  return out;
}

} // namespace forq::redis
