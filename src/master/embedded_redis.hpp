#pragma once

#include "config/config.hpp"
#include "forq/error.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace forq {

struct embedded_redis_options {
  std::filesystem::path data_dir = ".forq";
  aof_policy aof = aof_policy::everysec;
  std::string program = "redis-server"; // looked up on PATH unless it holds a '/'
  // How long redis-server may take to answer its first PING. Loading a large AOF does not count:
  // while it answers -LOADING, forq keeps waiting (and says so).
  std::chrono::milliseconds start_timeout{std::chrono::seconds(10)};
  // After SIGTERM, how long redis-server may take to write its AOF and exit before SIGKILL.
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(10)};
};

// A private redis-server that forq serve starts in its data directory, on a unix socket only
// (no TCP port), and stops when it exits. The data directory is locked (data_dir/forq.lock) for
// the owner's lifetime, so two forq services never share one embedded Redis by accident; other
// forq commands find it through find_embedded_redis().
//
// redis-server is started with PR_SET_PDEATHSIG, so it stops (cleanly, on SIGTERM) even when its
// owner is killed with SIGKILL; it runs in its own process group, so a Ctrl-C aimed at forq
// reaches forq alone and forq stops Redis last, after its workers have acknowledged their jobs.
// A socket or pid file left by a crashed run is cleaned up at start, and an orphaned
// redis-server of this data directory is stopped.
//
// Single-threaded use only; the thread that calls start() must outlive the Redis (the parent
// death signal fires when that thread exits).
class embedded_redis {
 public:
  // Or errc::embedded_redis_failed, the message one sentence: what failed and what to do.
  static expected<std::unique_ptr<embedded_redis>> start(const embedded_redis_options& options);

  embedded_redis(const embedded_redis&) = delete;
  embedded_redis& operator=(const embedded_redis&) = delete;
  ~embedded_redis(); // stop()

  // unix:///abs/data_dir/redis.sock
  const std::string& url() const { return url_; }
  const std::filesystem::path& socket_path() const { return socket_; }
  pid_t pid() const { return pid_; }

  // Without blocking: if redis-server has exited, reaps it and says how ("exit status 1",
  // "killed by SIGKILL"); otherwise nothing.
  std::optional<std::string> poll_exit();

  // Starts redis-server again (after poll_exit() reported it gone), on the same data.
  expected<> restart();

  // SIGTERM, wait up to stop_timeout for the final AOF write, then SIGKILL. Idempotent.
  void stop();

  // In a child forked from the owner (a worker): closes the child's copy of the data
  // directory's lock, so the lock goes with the owner (a forq serve started after the master
  // died is not refused while old workers drain). Touches nothing else; the child must never
  // destroy this object.
  void close_inherited_lock();

 private:
  embedded_redis(embedded_redis_options options, std::filesystem::path dir, int lock_fd);
  expected<> spawn_and_wait();

  embedded_redis_options options_;
  std::filesystem::path dir_;    // absolute data directory
  std::filesystem::path socket_; // dir_/redis.sock
  std::string url_;
  int lock_fd_ = -1;
  pid_t pid_ = -1;
};

// The URL of the embedded Redis that a running `forq serve` owns in data_dir, or nothing if no
// forq serve holds that directory.
std::optional<std::string> find_embedded_redis(const std::filesystem::path& data_dir);

} // namespace forq
