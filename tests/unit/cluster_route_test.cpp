// Redis Cluster routing without a cluster (src/redis/cluster.hpp): key slots, the key each
// command routes by, and what a redirection reply says. The cluster itself is exercised in
// tests/chaos/cluster_test.cpp.
#include "redis/cluster.hpp"

#include <gtest/gtest.h>

namespace {

using forq::redis::key_slot;
using forq::redis::read_redirect;
using forq::redis::redirect;
using forq::redis::reply;
using forq::redis::request;
using forq::redis::split_commands;

// The values redis-server 7 answers to CLUSTER KEYSLOT, the hash-tag rules of the cluster spec.
TEST(cluster_route, key_slots_are_those_redis_computes) {
  EXPECT_EQ(key_slot("123456789"), 12739); // CRC16/XMODEM 0x31C3
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot(""), 0);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("foo{}{bar}"), 8363);    // an empty tag: the whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), 4015); // the tag is "{bar"
  EXPECT_EQ(key_slot("foo{bar}{zap}"), 5061); // the first tag only
  EXPECT_EQ(key_slot("forq:{emails}:stream"), 3728);
  EXPECT_EQ(key_slot("forq:queues"), 8436);
  // Every key of a queue shares its slot.
  EXPECT_EQ(key_slot("forq:{emails}:job:17"), key_slot("forq:{emails}:meta"));
}

std::optional<std::uint16_t> slot_of(const request& r, std::size_t i = 0) {
  auto spans = split_commands(r.payload());
  EXPECT_TRUE(spans.has_value());
  if (!spans || i >= spans->size()) return std::nullopt;
  return (*spans)[i].slot;
}

TEST(cluster_route, each_command_routes_by_its_key) {
  EXPECT_EQ(slot_of(request("HSET", "forq:{a}:meta", "paused", "1")), key_slot("a"));
  EXPECT_EQ(slot_of(request("SADD", "forq:queues", "a")), key_slot("forq:queues"));
  EXPECT_EQ(slot_of(request("EVALSHA", "abc", "2", "forq:{b}:x", "forq:{b}:y", "arg")),
            key_slot("b"));
  EXPECT_EQ(slot_of(request("EVALSHA", "abc", "0", "forq:{b}:x")), std::nullopt); // no keys
  EXPECT_EQ(slot_of(request("XREADGROUP", "GROUP", "forq", "c1", "COUNT", "5", "BLOCK", "5000",
                            "STREAMS", "forq:{c}:stream", "forq:{c}:wake", ">", ">")),
            key_slot("c"));
  EXPECT_EQ(slot_of(request("XINFO", "GROUPS", "forq:{d}:stream")), key_slot("d"));
  // A group or consumer named "streams", a COUNT of "STREAMS": not the keyword.
  EXPECT_EQ(slot_of(request("XREADGROUP", "GROUP", "streams", "STREAMS", "COUNT", "5", "STREAMS",
                            "forq:{f}:stream", ">")),
            key_slot("f"));
  EXPECT_EQ(slot_of(request("XREAD", "BLOCK", "0", "STREAMS", "forq:{g}:stream", "$")),
            key_slot("g"));
  for (const char* keyless : {"PING", "WAIT", "TIME", "INFO", "CLIENT", "SCRIPT", "MULTI"})
    EXPECT_EQ(slot_of(request(keyless, "1")), std::nullopt) << keyless;
  // A binary payload with braces and CRLF inside is one argument, not a key or a command.
  request r("XADD", "forq:{e}:stream", "*", "payload", "{\"x\":\"\r\n*3\r\n\"}");
  r.push("WAIT", "1", "1000");
  auto spans = split_commands(r.payload());
  ASSERT_TRUE(spans.has_value());
  ASSERT_EQ(spans->size(), 2u);
  EXPECT_EQ((*spans)[0].slot, key_slot("e"));
  EXPECT_EQ((*spans)[1].slot, std::nullopt);
  EXPECT_EQ((*spans)[0].size + (*spans)[1].size, r.payload().size());
  EXPECT_EQ((*spans)[1].offset, (*spans)[0].size);
  // Not RESP arrays: nothing.
  EXPECT_FALSE(split_commands("PING\r\n").has_value());
  EXPECT_FALSE(split_commands("*2\r\n$4\r\nPING\r\n").has_value());
}

TEST(cluster_route, redirections_say_where_and_whether_the_command_ran) {
  auto moved = read_redirect(reply::make_error("MOVED 3999 127.0.0.1:6381"));
  EXPECT_EQ(moved.what, redirect::kind::moved);
  EXPECT_EQ(moved.slot, 3999);
  EXPECT_EQ(moved.host, "127.0.0.1");
  EXPECT_EQ(moved.port, 6381);
  auto v6 = read_redirect(reply::make_error("ASK 12 ::1:7002"));
  EXPECT_EQ(v6.what, redirect::kind::ask);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 7002);
  auto unnamed = read_redirect(reply::make_error("MOVED 5 :7003")); // the node that answered
  EXPECT_EQ(unnamed.what, redirect::kind::moved);
  EXPECT_EQ(unnamed.host, "");
  EXPECT_EQ(unnamed.port, 7003);
  EXPECT_EQ(read_redirect(reply::make_error("TRYAGAIN Multiple keys request during rehashing "
                                            "of slot"))
                .what,
            redirect::kind::wait);
  EXPECT_EQ(read_redirect(reply::make_error("CLUSTERDOWN The cluster is down")).what,
            redirect::kind::refresh);
  EXPECT_EQ(read_redirect(reply::make_error("READONLY You can't write against a read only "
                                            "replica."))
                .what,
            redirect::kind::refresh);
  EXPECT_EQ(read_redirect(reply::make_error("UNBLOCKED force unblock from blocking operation, "
                                            "instance state changed (master -> replica?)"))
                .what,
            redirect::kind::refresh);
  // Answers, not redirections: a stream deleted under a blocked read, an error of the command.
  EXPECT_EQ(read_redirect(reply::make_error("UNBLOCKED the stream key no longer exists")).what,
            redirect::kind::none);
  EXPECT_EQ(read_redirect(reply::make_error("ERR unknown command")).what, redirect::kind::none);
  EXPECT_EQ(read_redirect(reply::make_error("MOVED nonsense")).what, redirect::kind::none);
  EXPECT_EQ(read_redirect(reply::make_error("MOVED 99999 h:1")).what, redirect::kind::none);
  EXPECT_EQ(read_redirect(reply::make_status("OK")).what, redirect::kind::none);
}

} // namespace
