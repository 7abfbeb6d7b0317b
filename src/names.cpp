#include "forq/names.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>

namespace forq {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

bool good_name(std::string_view name) {
  return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), name_char);
}

constexpr std::array<std::string_view, 4> builtin_names{"noop", "echo", "sleep", "fail"};

} // namespace

expected<> queue::check_queue_name(std::string_view name) {
  if (good_name(name)) return {};
  return error(errc::invalid_value, "queue name \"" + std::string(name) +
                                        "\" is not allowed: use 1 to 128 characters of A-Z a-z "
                                        "0-9 _ . : -");
}

expected<> handlers::check_name(std::string_view name) {
  if (good_name(name)) return {};
  return error(errc::invalid_value, "handler name \"" + std::string(name) +
                                        "\" is not allowed: use 1 to 128 characters of A-Z a-z "
                                        "0-9 _ . : -");
}

bool handlers::is_builtin(std::string_view name) {
  return std::find(builtin_names.begin(), builtin_names.end(), name) != builtin_names.end();
}

expected<> handlers::check_http_url(std::string_view url) {
  auto refuse = [](std::string why) { return error(errc::invalid_value, std::move(why)); };
  auto u = boost::urls::parse_uri(url);
  if (!u) return refuse("not a URL: " + u.error().message());
  if (u->scheme() != "http") return refuse("only http:// URLs are supported");
  if (u->host().empty()) return refuse("the URL has no host");
  return {};
}

} // namespace forq
