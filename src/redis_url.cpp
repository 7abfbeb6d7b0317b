#include "forq/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <limits>
#include <optional>

namespace forq {
namespace {

namespace urls = boost::urls;

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

constexpr std::string_view forms =
    "redis://[user:password@]host[:port][/db], rediss://..., unix:///path[?db=N], "
    "redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER_NAME[?db=N], or "
    "redis-cluster://[user:password@]host[:port][,host[:port]...]";

constexpr std::string_view sentinel_form =
    "redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER_NAME[?db=N]";

constexpr std::string_view cluster_form =
    "redis-cluster://[user:password@]host[:port][,host[:port]...]";

error fail(std::string what) {
  return error(errc::invalid_value, std::move(what));
}

// The query of a URL that takes one parameter, db=N, into `db`; or what is wrong with it.
std::optional<error> read_db(const urls::url_view& u, std::string_view example, std::uint32_t& db) {
  for (auto param : u.params()) {
    if (param.key != "db")
      return fail("unknown query parameter \"" + std::string(param.key) +
                  "\"; only db=N is understood");
    if (!param.has_value || !parse_number(param.value, db))
      return fail("db must be a whole number, e.g. " + std::string(example));
  }
  return std::nullopt;
}

// The "[user:password@]h1[:p1][,h2[:p2]...]" part of a sentinel or cluster URL, into `ep` (its
// user and password) and `out` (the hosts). Boost.URL takes one host per authority, so the list
// is split here and each part is read as a URL of its own (which decodes and checks it the way a
// redis:// URL is).
std::optional<error> read_hosts(std::string_view authority, std::string_view kind,
                                std::string_view what, std::uint16_t default_port,
                                std::string_view form, redis_endpoint& ep,
                                std::vector<redis_endpoint::sentinel_address>& out) {
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    // The views a parse returns point into the text it parsed: keep each text alive.
    const std::string who_text = "redis://" + std::string(authority.substr(0, at)) + "@h";
    auto who = urls::parse_uri(who_text);
    if (!who)
      return fail("the user and password of a " + std::string(kind) +
                  " URL are not valid URL text");
    ep.user = who->user();
    ep.password = who->password();
    authority = authority.substr(at + 1);
  }
  if (authority.empty())
    return fail("a " + std::string(kind) + " URL needs at least one " + std::string(what) + ": " +
                std::string(form));
  for (std::size_t start = 0; start <= authority.size();) {
    auto comma = authority.find(',', start);
    if (comma == std::string_view::npos) comma = authority.size();
    auto one = authority.substr(start, comma - start);
    start = comma + 1;
    const std::string one_text = "redis://" + std::string(one);
    auto u = urls::parse_uri(one_text);
    if (one.empty() || !u || u->encoded_host().empty() || !u->path().empty())
      return fail("\"" + std::string(one) + "\" is not a " + std::string(what) +
                  "'s host[:port]; expected " + std::string(form));
    redis_endpoint::sentinel_address s;
    s.host = u->host_address();
    s.port = default_port;
    if (u->has_port()) {
      unsigned port = 0;
      if (!parse_number(u->port(), port) || port == 0 || port > 65535)
        return fail("port \"" + std::string(u->port()) + "\" is not a number from 1 to 65535");
      s.port = static_cast<std::uint16_t>(port);
    }
    out.push_back(std::move(s));
  }
  return std::nullopt;
}

// redis-sentinel://[user:password@]h1[:p1][,h2[:p2]...]/NAME[?db=N]
expected<redis_endpoint> parse_sentinel_url(std::string_view text, std::string_view scheme) {
  redis_endpoint ep;
  ep.kind =
      scheme == "rediss-sentinel" ? redis_endpoint::transport::tls : redis_endpoint::transport::tcp;
  auto rest = text.substr(scheme.size() + 3);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos)
    return fail("a sentinel URL names the primary after the sentinels: " +
                std::string(sentinel_form));
  auto authority = rest.substr(0, slash);
  auto tail = rest.substr(slash + 1);
  if (tail.find('#') != std::string_view::npos) return fail("a Redis URL takes no #fragment");
  if (auto bad =
          read_hosts(authority, "sentinel", "sentinel", 26379, sentinel_form, ep, ep.sentinels))
    return *bad;

  auto query = tail.find('?');
  ep.master_name = std::string(tail.substr(0, query));
  if (ep.master_name.empty() || ep.master_name.find('/') != std::string::npos)
    return fail("a sentinel URL ends with the primary's name, as the sentinels know it: " +
                std::string(sentinel_form));
  if (query != std::string_view::npos) {
    const std::string query_text = "redis://h/?" + std::string(tail.substr(query + 1));
    auto u = urls::parse_uri(query_text);
    if (!u) return fail("the query of a sentinel URL is not valid URL text");
    if (auto bad = read_db(*u, "redis-sentinel://host:26379/mymaster?db=1", ep.db)) return *bad;
  }
  return ep;
}

// redis-cluster://[user:password@]h1[:p1][,h2[:p2]...][/]: some nodes of the cluster (any of
// them, primaries or replicas), from which forq learns the rest. A cluster has database 0 only.
expected<redis_endpoint> parse_cluster_url(std::string_view text, std::string_view scheme) {
  redis_endpoint ep;
  ep.kind =
      scheme == "rediss-cluster" ? redis_endpoint::transport::tls : redis_endpoint::transport::tcp;
  auto rest = text.substr(scheme.size() + 3);
  auto slash = rest.find_first_of("/?#");
  auto authority = rest.substr(0, slash);
  if (slash != std::string_view::npos && rest.substr(slash) != "/")
    return fail("a cluster URL names nodes and nothing after them (Redis Cluster has database 0 "
                "only): " +
                std::string(cluster_form));
  if (auto bad = read_hosts(authority, "cluster", "cluster node", 6379, cluster_form, ep,
                            ep.cluster_nodes))
    return *bad;
  ep.host = ep.cluster_nodes.front().host;
  ep.port = ep.cluster_nodes.front().port;
  return ep;
}

} // namespace

expected<redis_endpoint> parse_redis_url(std::string_view text) {
  for (std::string_view scheme : {"redis-sentinel", "rediss-sentinel"})
    if (text.starts_with(std::string(scheme) + "://")) return parse_sentinel_url(text, scheme);
  for (std::string_view scheme : {"redis-cluster", "rediss-cluster"})
    if (text.starts_with(std::string(scheme) + "://")) return parse_cluster_url(text, scheme);
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
    if (auto bad = read_db(u, "unix:///path/redis.sock?db=1", ep.db)) return *bad;
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
  auto bracket = [](const std::string& h) {
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
  };
  if (in_cluster()) {
    std::string hosts;
    for (const auto& s : cluster_nodes)
      hosts += (hosts.empty() ? "" : ",") + bracket(s.host) + ":" + std::to_string(s.port);
    return std::string(kind == transport::tls ? "rediss-cluster://" : "redis-cluster://") + auth +
           hosts;
  }
  if (via_sentinel()) {
    std::string hosts;
    for (const auto& s : sentinels)
      hosts += (hosts.empty() ? "" : ",") + bracket(s.host) + ":" + std::to_string(s.port);
    return std::string(kind == transport::tls ? "rediss-sentinel://" : "redis-sentinel://") + auth +
           hosts + "/" + master_name + (db ? "?db=" + std::to_string(db) : "");
  }
  switch (kind) {
  case transport::unix_socket:
    return "unix://" + auth + path + (db ? "?db=" + std::to_string(db) : "");
  case transport::tcp:
  case transport::tls: {
    return std::string(kind == transport::tls ? "rediss://" : "redis://") + auth + bracket(host) +
           ":" + std::to_string(port) + (db ? "/" + std::to_string(db) : "");
  }
  }
  return {};
}

} // namespace forq
