#include "forq/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <limits>

namespace forq {
namespace {

namespace urls = boost::urls;

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

constexpr std::string_view forms =
    "redis://[user:password@]host[:port][/db], rediss://..., or unix:///path[?db=N]";

redis_url_error fail(std::string what) {
  return {std::move(what)};
}

} // namespace

std::variant<redis_endpoint, redis_url_error> parse_redis_url(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) return fail("not a URL; expected " + std::string(forms));
  urls::url_view u = *parsed;

  redis_endpoint ep;
  std::string scheme(u.scheme());
  if (scheme == "redis")
    ep.kind = redis_endpoint::transport::tcp;
  else if (scheme == "rediss")
    ep.kind = redis_endpoint::transport::tls;
  else if (scheme == "unix")
    ep.kind = redis_endpoint::transport::unix_socket;
  else
    return fail("unknown scheme \"" + scheme + "\"; expected " + std::string(forms));

  if (u.has_userinfo()) {
    ep.user = u.user();
    ep.password = u.password();
    // "redis://:secret@host" is the classic password-only form: no user, the default one.
  }
  if (u.has_fragment()) return fail("a Redis URL takes no #fragment");

  if (ep.kind == redis_endpoint::transport::unix_socket) {
    if (!u.encoded_host().empty() && u.encoded_host() != "localhost")
      return fail("a unix socket URL has no host; it takes an absolute path: "
                  "unix:///path/to/redis.sock");
    ep.path = u.path();
    if (ep.path.empty() || ep.path.front() != '/')
      return fail("a unix socket URL needs an absolute path: unix:///path/to/redis.sock");
    for (auto param : u.params()) {
      if (param.key != "db")
        return fail("unknown query parameter \"" + std::string(param.key) +
                    "\"; only db=N is understood");
      if (!param.has_value || !parse_number(param.value, ep.db))
        return fail("db must be a whole number, e.g. unix:///path/redis.sock?db=1");
    }
    return ep;
  }

  if (u.host_type() == urls::host_type::none || u.encoded_host().empty())
    return fail("missing host; expected " + std::string(forms));
  ep.host = u.host_address();
  if (u.has_port()) {
    unsigned port = 0;
    if (!parse_number(u.port(), port) || port == 0 || port > 65535)
      return fail("port \"" + std::string(u.port()) + "\" is not a number from 1 to 65535");
    ep.port = static_cast<std::uint16_t>(port);
  }
  std::string path = u.path();
  if (!path.empty() && path != "/") {
    if (!parse_number(std::string_view(path).substr(1), ep.db))
      return fail("the path must be a database number, e.g. redis://host:6379/2; got \"" + path +
                  "\"");
  }
  if (u.has_query()) return fail("a redis:// URL takes no query; put the database in the path");
  return ep;
}

std::string redact_url(std::string_view url) {
  // Works on the raw text so that even an unparseable URL never shows its password.
  auto scheme_end = url.find("://");
  auto start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  auto at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  auto colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(url); // user, no password
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

std::string redis_endpoint::redacted() const {
  std::string auth;
  if (!user.empty() || !password.empty()) auth = user + (password.empty() ? "" : ":***") + "@";
  switch (kind) {
  case transport::unix_socket:
    return "unix://" + auth + path + (db ? "?db=" + std::to_string(db) : "");
  case transport::tcp:
  case transport::tls: {
    auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return std::string(kind == transport::tls ? "rediss://" : "redis://") + auth + h + ":" +
           std::to_string(port) + (db ? "/" + std::to_string(db) : "");
  }
  }
  return {};
}

} // namespace forq
