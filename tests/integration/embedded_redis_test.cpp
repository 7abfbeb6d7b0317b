// The embedded redis-server as the library starts it: start, stop, locking, stale files from a
// crashed run, orphans, and each way start-up can fail.
#include "master/embedded_redis.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using forq::embedded_redis;
using forq::embedded_redis_options;
using forq::test::temp_dir;
using namespace std::chrono_literals;

std::unique_ptr<embedded_redis> start_ok(const embedded_redis_options& o) {
  auto r = embedded_redis::start(o);
  if (!r) {
    ADD_FAILURE() << r.error().message();
    return nullptr;
  }
  return std::move(*r);
}

std::string start_error(const embedded_redis_options& o) {
  auto r = embedded_redis::start(o);
  if (!r) {
    EXPECT_EQ(r.error(), forq::errc::embedded_redis_failed);
    return r.error().message();
  }
  ADD_FAILURE() << "embedded redis started, an error was expected";
  return {};
}

TEST(embedded_redis, starts_on_a_unix_socket_with_aof_and_stops) {
  temp_dir dir;
  auto redis = start_ok({.data_dir = dir / "data"});
  ASSERT_TRUE(redis);
  auto socket = fs::canonical(dir / "data") / "redis.sock";
  EXPECT_EQ(redis->url(), "unix://" + socket.string());
  EXPECT_TRUE(forq::test::ping_unix(socket.string()));
  EXPECT_TRUE(fs::exists(dir / "data" / "appendonlydir"));
  EXPECT_EQ(forq::find_embedded_redis(dir / "data"), redis->url());

  pid_t pid = redis->pid();
  redis.reset();
  EXPECT_TRUE(forq::test::process_gone(pid));
  EXPECT_FALSE(fs::exists(socket));
  EXPECT_FALSE(forq::find_embedded_redis(dir / "data")); // lock released
}

TEST(embedded_redis, keeps_data_across_a_restart_through_its_aof) {
  temp_dir dir;
  {
    auto redis = start_ok({.data_dir = dir.path(), .aof = forq::aof_policy::always});
    ASSERT_TRUE(redis);
    redisContext* c = redisConnectUnix(redis->socket_path().c_str());
    freeReplyObject(redisCommand(c, "SET survivor yes"));
    redisFree(c);
  }
  auto redis = start_ok({.data_dir = dir.path()});
  ASSERT_TRUE(redis);
  redisContext* c = redisConnectUnix(redis->socket_path().c_str());
  auto* reply = static_cast<redisReply*>(redisCommand(c, "GET survivor"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(std::string(reply->str, reply->len), "yes");
  freeReplyObject(reply);
  redisFree(c);
}

TEST(embedded_redis, aof_off_writes_no_append_only_file) {
  temp_dir dir;
  auto redis = start_ok({.data_dir = dir.path(), .aof = forq::aof_policy::off});
  ASSERT_TRUE(redis);
  EXPECT_FALSE(fs::exists(dir / "appendonlydir"));
}

TEST(embedded_redis, one_owner_per_data_directory) {
  temp_dir dir;
  auto first = start_ok({.data_dir = dir.path()});
  ASSERT_TRUE(first);
  auto msg = start_error({.data_dir = dir.path()});
  EXPECT_NE(msg.find("is in use by another forq serve (pid " + std::to_string(::getpid()) + ")"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(forq::test::ping_unix(first->socket_path().string())); // the first one unharmed
}

TEST(embedded_redis, cleans_up_stale_socket_and_pid_file_of_a_crashed_run) {
  temp_dir dir;
  // A socket file nobody listens on, and a pid file naming a process that is gone.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, (dir / "redis.sock").c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  forq::test::write_file(dir / "redis.pid", "999999\n");

  auto redis = start_ok({.data_dir = dir.path()});
  ASSERT_TRUE(redis);
  EXPECT_TRUE(forq::test::ping_unix(redis->socket_path().string()));
}

TEST(embedded_redis, recovers_after_its_redis_server_was_killed) {
  temp_dir dir;
  auto redis = start_ok({.data_dir = dir.path()});
  ASSERT_TRUE(redis);
  ::kill(redis->pid(), SIGKILL); // leaves its socket and pid file behind
  std::optional<std::string> how;
  for (int i = 0; i < 500 && !how; ++i, std::this_thread::sleep_for(10ms))
    how = redis->poll_exit();
  ASSERT_TRUE(how);
  EXPECT_EQ(*how, "killed by SIGKILL");
  EXPECT_TRUE(redis->restart());
  EXPECT_TRUE(forq::test::ping_unix(redis->socket_path().string()));
}

TEST(embedded_redis, stops_an_orphaned_redis_server_of_its_data_directory) {
  temp_dir dir;
  auto socket = (dir / "redis.sock").string();
  // As a crashed run whose Redis outlived it would leave it.
  forq::test::child_process orphan({"/usr/bin/redis-server", "--port", "0", "--unixsocket", socket,
                                    "--pidfile", (dir / "redis.pid").string(), "--save", "",
                                    "--dir", dir.path().string()});
  for (int i = 0; i < 500 && !forq::test::ping_unix(socket); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(forq::test::ping_unix(socket));

  auto redis = start_ok({.data_dir = dir.path()});
  ASSERT_TRUE(redis);
  EXPECT_TRUE(orphan.wait_for(5s)) << "the orphan is still running";
  EXPECT_NE(redis->pid(), orphan.pid());
  EXPECT_TRUE(forq::test::ping_unix(socket));
}

TEST(embedded_redis, missing_redis_server_names_the_package) {
  temp_dir dir;
  auto msg = start_error({.data_dir = dir.path(), .program = "/nonexistent/redis-server"});
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("apt-get install redis-server"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_empty(dir.path())) << "nothing is created before the checks pass";
}

TEST(embedded_redis, unusable_data_directory_is_reported) {
  temp_dir dir;
  forq::test::write_file(dir / "file", "not a directory");
  auto msg = start_error({.data_dir = dir / "file" / "data"});
  EXPECT_NE(msg.find("cannot create data directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data-dir"), std::string::npos) << msg;
}

TEST(embedded_redis, too_long_a_socket_path_is_reported) {
  temp_dir dir;
  auto deep = dir / std::string(120, 'd');
  auto msg = start_error({.data_dir = deep});
  EXPECT_NE(msg.find("longer than the 107 bytes"), std::string::npos) << msg;
}

TEST(embedded_redis, a_server_that_dies_at_start_is_reported_with_its_words) {
  temp_dir dir;
  forq::test::write_file(dir / "fake-redis",
                         "#!/bin/sh\necho 'FATAL: cannot open AOF' >&2\nexit 1\n", true);
  auto msg = start_error({.data_dir = dir / "data", .program = (dir / "fake-redis").string()});
  EXPECT_NE(msg.find("exited during start-up (exit status 1)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("FATAL: cannot open AOF"), std::string::npos) << msg;
  // Its lock is released: the next start is not refused as "in use".
  auto again = start_error({.data_dir = dir / "data", .program = (dir / "fake-redis").string()});
  EXPECT_EQ(again.find("in use"), std::string::npos) << again;
}

TEST(embedded_redis, a_server_that_never_answers_is_stopped_after_the_timeout) {
  temp_dir dir;
  forq::test::write_file(dir / "mute-redis",
                         "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/mute.pid\"\n"
                         "exec sleep 60\n",
                         true);
  auto msg = start_error(
      {.data_dir = dir / "data", .program = (dir / "mute-redis").string(), .start_timeout = 300ms});
  EXPECT_NE(msg.find("did not answer PING"), std::string::npos) << msg;
  EXPECT_NE(msg.find("within 300 ms"), std::string::npos) << msg;
  std::ifstream pid_file(dir / "mute.pid");
  pid_t pid = 0;
  ASSERT_TRUE(pid_file >> pid);
  EXPECT_TRUE(forq::test::process_gone(pid)) << "the mute server was left running";
}

} // namespace
