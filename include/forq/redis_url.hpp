#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace forq {

// Where a Redis server is and how to log in. Parsed from
//   redis://[user:password@]host[:port][/db]
//   rediss://...                      (TLS)
//   unix:///path/to/socket[?db=N]     (user and password may stand before the path too)
struct redis_endpoint {
  enum class transport { tcp, tls, unix_socket };

  transport kind = transport::tcp;
  std::string host; // tcp/tls: a host name or IP literal (IPv6 without brackets)
  std::uint16_t port = 6379;
  std::string path;     // unix_socket: absolute path of the socket
  std::string user;     // empty: the default user
  std::string password; // empty: no AUTH
  std::uint32_t db = 0;

  // The URL again, with the password replaced by "***": the only form that may be printed.
  std::string redacted() const;
};

struct redis_url_error {
  std::string message; // says what is wrong and what is allowed; never contains the password
};

std::variant<redis_endpoint, redis_url_error> parse_redis_url(std::string_view url);

// A URL made printable: the password (anything between "user:" and "@") becomes "***", even when
// the URL is too malformed to parse.
std::string redact_url(std::string_view url);

} // namespace forq
