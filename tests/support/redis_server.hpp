#pragma once

#include "redis/pool.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace forq::test {

// A throwaway redis-server (the Debian package's binary) on a free loopback port, with no
// persistence, in its own temporary directory. Started by the constructor (which fails the test
// if it does not answer PING), killed by the destructor however the test ends.
class redis_server {
 public:
  explicit redis_server(std::vector<std::string> extra_args = {});
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

// A loopback TCP port nobody listens on right now.
std::uint16_t free_port();

// PING through a unix socket or TCP; true on +PONG.
bool ping_unix(const std::string& socket_path);

} // namespace forq::test
