#pragma once

#include "forq/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace forq {

// Where a Redis server is and how to log in. Parsed from
//   redis://[user:password@]host[:port][/db]
//   rediss://...                      (TLS)
//   unix:///path/to/socket[?db=N]     (user and password may stand before the path too)
//   redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER_NAME[?db=N]
//   rediss-sentinel://...             (TLS, to the sentinels and to the primary)
// A sentinel URL names the sentinels (port 26379 by default) and the primary they watch; the
// credentials are the primary's (the sentinels' own password is a setting of its own).
//   redis-cluster://[user:password@]host[:port][,host[:port]...]
//   rediss-cluster://...              (TLS, to every node)
// A cluster URL names some nodes of a Redis Cluster (port 6379 by default); forq learns the
// others from them (CLUSTER SLOTS) and sends each command to the primary that owns its key.
struct redis_endpoint {
  enum class transport { tcp, tls, unix_socket };

  transport kind = transport::tcp;
  std::string host; // tcp/tls: a host name or IP literal (IPv6 without brackets)
  std::uint16_t port = 6379;
  std::string path;     // unix_socket: absolute path of the socket
  std::string user;     // empty: the default user
  std::string password; // empty: no AUTH
  std::uint32_t db = 0;

  // redis-sentinel://: the sentinels, in the URL's order, and the name of the primary they
  // watch. host and port above are unused until a sentinel names the primary.
  struct sentinel_address {
    std::string host;
    std::uint16_t port = 26379;
  };
  std::vector<sentinel_address> sentinels;
  std::string master_name;
  bool via_sentinel() const { return !master_name.empty(); }

  // redis-cluster://: the seed nodes, in the URL's order (host and port above are the first).
  std::vector<sentinel_address> cluster_nodes;
  bool in_cluster() const { return !cluster_nodes.empty(); }

  // The URL again, with the password replaced by "***": the only form that may be printed.
  std::string redacted() const;
};

// The endpoint `url` names, or errc::invalid_value with what is wrong and what is allowed (the
// message never holds the password).
expected<redis_endpoint> parse_redis_url(std::string_view url);

// A URL made printable: the password (anything between "user:" and "@") becomes "***", even when
// the URL is too malformed to parse.
std::string redact_url(std::string_view url);

} // namespace forq
