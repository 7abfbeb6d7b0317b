#include "forq/redis_url.hpp"

#include <gtest/gtest.h>

namespace {

using forq::redis_endpoint;

redis_endpoint parse_ok(std::string_view url) {
  auto r = forq::parse_redis_url(url);
  if (!r) {
    ADD_FAILURE() << url << ": " << r.error().message();
    return {};
  }
  return *r;
}

std::string parse_error(std::string_view url) {
  auto r = forq::parse_redis_url(url);
  if (!r) {
    EXPECT_EQ(r.error(), forq::errc::invalid_value);
    return r.error().message();
  }
  ADD_FAILURE() << url << " was accepted";
  return {};
}

TEST(redis_url, tcp_with_everything) {
  auto e = parse_ok("redis://alice:s3cret@redis.example:6380/4");
  EXPECT_EQ(e.kind, redis_endpoint::transport::tcp);
  EXPECT_EQ(e.host, "redis.example");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.password, "s3cret");
  EXPECT_EQ(e.db, 4u);
  EXPECT_EQ(e.redacted(), "redis://alice:***@redis.example:6380/4");
}

TEST(redis_url, defaults_and_password_only) {
  auto e = parse_ok("redis://:pw@127.0.0.1");
  EXPECT_EQ(e.port, 6379);
  EXPECT_EQ(e.user, "");
  EXPECT_EQ(e.password, "pw");
  EXPECT_EQ(e.db, 0u);
  EXPECT_EQ(parse_ok("redis://localhost/").db, 0u);
}

TEST(redis_url, percent_encoded_password_is_decoded) {
  EXPECT_EQ(parse_ok("redis://u:p%40ss@h").password, "p@ss");
}

TEST(redis_url, ipv6_and_tls) {
  auto e = parse_ok("rediss://[::1]:7000");
  EXPECT_EQ(e.kind, redis_endpoint::transport::tls);
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(e.redacted(), "rediss://[::1]:7000");
}

TEST(redis_url, unix_socket) {
  auto e = parse_ok("unix:///run/redis/redis.sock?db=3");
  EXPECT_EQ(e.kind, redis_endpoint::transport::unix_socket);
  EXPECT_EQ(e.path, "/run/redis/redis.sock");
  EXPECT_EQ(e.db, 3u);
  EXPECT_EQ(parse_ok("unix://:pw@/tmp/r.sock").password, "pw");
}

TEST(redis_url, malformed_forms_say_what_is_wrong) {
  EXPECT_NE(parse_error("http://h").find("unknown scheme \"http\""), std::string::npos);
  EXPECT_NE(parse_error("redis://h:0").find("1 to 65535"), std::string::npos);
  EXPECT_NE(parse_error("redis://h:port").find("1 to 65535"), std::string::npos);
  EXPECT_NE(parse_error("redis://h/abc").find("database number"), std::string::npos);
  EXPECT_NE(parse_error("redis://h?db=1").find("no query"), std::string::npos);
  EXPECT_NE(parse_error("redis://h#x").find("fragment"), std::string::npos);
  EXPECT_NE(parse_error("redis:///0").find("missing host"), std::string::npos);
  EXPECT_NE(parse_error("unix://host/tmp/s").find("no host"), std::string::npos);
  EXPECT_NE(parse_error("unix:///tmp/s?timeout=1").find("only db=N"), std::string::npos);
  EXPECT_NE(parse_error("unix:///tmp/s?db=x").find("whole number"), std::string::npos);
  EXPECT_NE(parse_error("localhost:6379").find("unknown scheme"), std::string::npos);
  EXPECT_NE(parse_error("").find("not a URL"), std::string::npos);
}

TEST(redis_url, errors_never_contain_the_password) {
  for (auto url : {"redis://u:topsecret@h:99999", "redis://u:topsecret@h/x", "ftp://u:topsecret@h"})
    EXPECT_EQ(parse_error(url).find("topsecret"), std::string::npos) << url;
}

TEST(redis_url, redaction_works_on_any_text) {
  EXPECT_EQ(forq::redact_url("redis://u:pw@h:1"), "redis://u:***@h:1");
  EXPECT_EQ(forq::redact_url("redis://:pw@h"), "redis://:***@h");
  EXPECT_EQ(forq::redact_url("redis://u:p@w@h"), "redis://u:***@h"); // unencoded @ in password
  EXPECT_EQ(forq::redact_url("redis://u@h"), "redis://u@h");         // no password
  EXPECT_EQ(forq::redact_url("redis://h:6379"), "redis://h:6379");
  EXPECT_EQ(forq::redact_url("garbage :pw@ garbage"), "garbage :***@ garbage");
  EXPECT_EQ(forq::redact_url(""), "");
}

} // namespace

TEST(redis_url, sentinel_lists_the_sentinels_and_names_the_primary) {
  auto e = parse_ok("redis-sentinel://bob:p%40ss@10.0.0.1:5000,sentinel-b,[::1]:26380/jobs?db=2");
  EXPECT_TRUE(e.via_sentinel());
  EXPECT_EQ(e.kind, redis_endpoint::transport::tcp);
  ASSERT_EQ(e.sentinels.size(), 3u);
  EXPECT_EQ(e.sentinels[0].host, "10.0.0.1");
  EXPECT_EQ(e.sentinels[0].port, 5000);
  EXPECT_EQ(e.sentinels[1].host, "sentinel-b");
  EXPECT_EQ(e.sentinels[1].port, 26379); // Sentinel's own default port
  EXPECT_EQ(e.sentinels[2].host, "::1");
  EXPECT_EQ(e.sentinels[2].port, 26380);
  EXPECT_EQ(e.master_name, "jobs");
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(e.password, "p@ss");
  EXPECT_EQ(e.db, 2u);
  EXPECT_EQ(e.redacted(),
            "redis-sentinel://bob:***@10.0.0.1:5000,sentinel-b:26379,[::1]:26380/jobs?db=2");
  auto tls = parse_ok("rediss-sentinel://s1:26379/mymaster");
  EXPECT_EQ(tls.kind, redis_endpoint::transport::tls);
  EXPECT_EQ(tls.db, 0u);
  EXPECT_EQ(tls.redacted(), "rediss-sentinel://s1:26379/mymaster");
  EXPECT_FALSE(parse_ok("redis://h").via_sentinel());
}

TEST(redis_url, a_bad_sentinel_url_says_what_is_wrong) {
  EXPECT_NE(parse_error("redis-sentinel://s1:26379").find("names the primary"), std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel://s1:26379/").find("primary's name"), std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel:///mymaster").find("at least one sentinel"),
            std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel://s1,,s2/m").find("host[:port]"), std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel://s1:0/m").find("1 to 65535"), std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel://s1/m?db=x").find("whole number"), std::string::npos);
  EXPECT_NE(parse_error("redis-sentinel://s1/m?timeout=1").find("only db=N"), std::string::npos);
  // The password never shows in an error.
  EXPECT_EQ(parse_error("redis-sentinel://u:hunter2@s1:99999/m").find("hunter2"),
            std::string::npos);
}

TEST(redis_url, cluster_urls_name_seed_nodes) {
  auto ep = forq::parse_redis_url("redis-cluster://u:p%40ss@10.0.0.1:7000,node-b,[::1]:7002/");
  ASSERT_TRUE(ep.has_value()) << ep.error().message();
  EXPECT_TRUE(ep->in_cluster());
  EXPECT_FALSE(ep->via_sentinel());
  ASSERT_EQ(ep->cluster_nodes.size(), 3u);
  EXPECT_EQ(ep->cluster_nodes[0].host, "10.0.0.1");
  EXPECT_EQ(ep->cluster_nodes[0].port, 7000);
  EXPECT_EQ(ep->cluster_nodes[1].host, "node-b");
  EXPECT_EQ(ep->cluster_nodes[1].port, 6379); // the default port of a node
  EXPECT_EQ(ep->cluster_nodes[2].host, "::1");
  EXPECT_EQ(ep->user, "u");
  EXPECT_EQ(ep->password, "p@ss");
  EXPECT_EQ(ep->db, 0u);
  EXPECT_EQ(ep->redacted(), "redis-cluster://u:***@10.0.0.1:7000,node-b:6379,[::1]:7002");
  auto tls = forq::parse_redis_url("rediss-cluster://h:7000");
  ASSERT_TRUE(tls.has_value());
  EXPECT_EQ(tls->kind, forq::redis_endpoint::transport::tls);
  // A cluster has database 0 only, and a URL names nodes and nothing else.
  EXPECT_NE(parse_error("redis-cluster://h:7000/1").find("database 0 only"), std::string::npos);
  EXPECT_NE(parse_error("redis-cluster://h:7000?db=1").find("database 0 only"), std::string::npos);
  EXPECT_NE(parse_error("redis-cluster://").find("at least one cluster node"), std::string::npos);
  EXPECT_NE(parse_error("redis-cluster://h:0").find("1 to 65535"), std::string::npos);
  EXPECT_NE(parse_error("redis-cluster://a,,b").find("host[:port]"), std::string::npos);
  EXPECT_EQ(parse_error("redis-cluster://u:hunter2@h:99999").find("hunter2"), std::string::npos);
}
