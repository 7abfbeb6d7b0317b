#pragma once

#include "redis/pool.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace forq::test {

// A throwaway redis-server (the Debian package's binary) on a free loopback port, with no
// persistence, in its own temporary directory. Started by the constructor (which fails the test
// if it does not answer PING), killed by the destructor however the test ends.
class redis_server {
 public:
  // cluster_bus: a port whose cluster bus port (port + 10000) is free too.
  explicit redis_server(std::vector<std::string> extra_args = {}, bool cluster_bus = false);
  ~redis_server();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  void stop();                  // SIGKILL: the fastest way down, as a crash would be
  void freeze() const;          // SIGSTOP: alive, silent
  void signal_continue() const; // SIGCONT
  void start();                 // again, on the same port

  // A command through a short-lived hiredis connection, the reply as text: "PONG", "OK",
  // "(nil)", an integer as digits, "ERR ..." for an error, arrays as "[a, b]".
  std::string command(const std::vector<std::string>& argv) const;

 private:
  bool try_start();

  temp_dir dir_;
  std::vector<std::string> extra_args_;
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
};

// The shared fixture of integration tests: a fresh redis-server for every test.
class redis_test : public ::testing::Test {
 protected:
  redis_server redis_;

  // A pool (forq::redis::pool) on this test's redis-server.
  redis::pool_options pool_options() const {
    redis::pool_options po;
    po.connection.endpoint.host = "127.0.0.1";
    po.connection.endpoint.port = redis_.port();
    po.role = "test";
    return po;
  }
};

// A command to whatever Redis listens on 127.0.0.1:port (a server, a sentinel), as
// redis_server::command reads it.
std::string redis_command(std::uint16_t port, const std::vector<std::string>& argv);

// Calls `done` every 20 ms until it returns true (true) or `limit` passes (its last answer).
template <class F>
bool poll_until(std::chrono::milliseconds limit, F done) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// Until every live server of `servers` that is a replica has its link to its primary up; false
// after `limit`.
bool wait_for_replicas_in_sync(const std::vector<std::unique_ptr<redis_server>>& servers,
                               std::chrono::milliseconds limit);

// A loopback TCP port nobody listens on right now.
std::uint16_t free_port();
// One for a cluster node: below 55536, with port + 10000 free as well.
std::uint16_t free_cluster_port();

// PING through a unix socket or TCP; true on +PONG.
bool ping_unix(const std::string& socket_path);

} // namespace forq::test
