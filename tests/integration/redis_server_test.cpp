// The shared fixture itself: a real redis-server on a free port, gone after the test.
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

namespace {

using forq::test::redis_server;
using forq::test::redis_test;
using namespace std::chrono_literals;

TEST_F(redis_test, answers_commands_on_its_private_port) {
  EXPECT_NE(redis_.port(), 6379);
  EXPECT_EQ(redis_.command({"PING"}), "PONG");
  EXPECT_EQ(redis_.command({"SET", "k", std::string("a\0b", 3)}), "OK");
  EXPECT_EQ(redis_.command({"STRLEN", "k"}), "3");
  EXPECT_EQ(redis_.command({"CONFIG", "GET", "appendonly"}), "[appendonly, no]");
}

TEST(redis_server, is_killed_when_it_goes_out_of_scope) {
  pid_t pid;
  {
    redis_server r;
    pid = r.pid();
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(forq::test::process_gone(pid));
  }
  EXPECT_TRUE(forq::test::wait_process_gone(pid, 5s));
}

TEST(redis_server, restarts_on_the_same_port) {
  redis_server r;
  auto port = r.port();
  r.command({"SET", "k", "v"});
  r.stop();
  EXPECT_NE(r.command({"PING"}), "PONG");
  r.start();
  EXPECT_EQ(r.port(), port);
  EXPECT_EQ(r.command({"PING"}), "PONG");
  EXPECT_EQ(r.command({"GET", "k"}), "(nil)"); // no persistence: a fresh server
}

TEST(redis_server, two_servers_get_two_ports) {
  redis_server a, b;
  EXPECT_NE(a.port(), b.port());
  a.command({"SET", "where", "a"});
  EXPECT_EQ(b.command({"GET", "where"}), "(nil)");
}

} // namespace
