#include "json_text.hpp"

#include "json_events.hpp"

#include <algorithm>
#include <vector>

namespace forq {
namespace {

// A basic_parser handler that remembers the keys of each open object and stops at the first
// one seen twice.
struct key_tracker : forq::detail::json_events {
  struct level {
    bool object;
    std::vector<std::string> keys; // seen so far; the last is the one whose value is open
  };
  std::vector<level> open;
  std::string key;
  std::optional<std::string> repeated; // its dotted path

  bool on_array_begin(ec_t&) {
    open.push_back({false, {}});
    return true;
  }
  bool on_array_end(std::size_t, ec_t&) {
    open.pop_back();
    return true;
  }
  bool on_object_begin(ec_t&) {
    open.push_back({true, {}});
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    open.pop_back();
    return true;
  }
  bool on_key_part(sv s, std::size_t, ec_t&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(sv s, std::size_t, ec_t& ec) {
    key.append(s.data(), s.size());
    auto& keys = open.back().keys;
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      std::string path;
      for (const auto& l : open)
        if (l.object && &l != &open.back() && !l.keys.empty()) path += l.keys.back() + ".";
      repeated = path + key;
      ec = boost::json::error::syntax; // stops the parser; `repeated` says why
      return false;
    }
    keys.push_back(std::move(key));
    key.clear();
    return true;
  }
};

} // namespace

std::optional<repeated_key> first_repeated_key(std::string_view text) {
  boost::json::basic_parser<key_tracker> p{boost::json::parse_options()};
  boost::system::error_code ec;
  auto used = p.write_some(false, text.data(), text.size(), ec);
  if (!p.handler().repeated) return std::nullopt;
  return repeated_key{*p.handler().repeated, used};
}

} // namespace forq
