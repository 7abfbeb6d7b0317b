#pragma once

// `forq bench drain|steady|mixed` (bench.cpp, docs/benchmarks.md): a workload end to end
// through forq serve's process model, measured and verified; `forq bench idle` (idle.cpp):
// the cost of queues with nothing to do.

#include "config/config.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <variant>
#include <vector>

namespace forq {
class embedded_redis;
namespace redis {
class connection;
}
} // namespace forq

namespace forq::bench {

// The Redis a bench runs on: the given URL, or (empty) a private redis-server without
// persistence in a fresh directory, stopped and removed with this object.
class bench_redis {
 public:
  // The Redis, or the exit code after saying why on stderr.
  static std::variant<std::unique_ptr<bench_redis>, int> open(const std::string& url);
  ~bench_redis();
  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::unique_ptr<embedded_redis> server_;
  std::filesystem::path dir_;
};

// Deletes every key matching `pattern` (SCAN and UNLINK); nothing when the connection is down.
boost::asio::awaitable<void> delete_keys(redis::connection& conn, std::string pattern);

struct bench_args {
  std::string workload;            // drain | steady | mixed
  std::size_t jobs = 100000;       // drain
  double rate = 1000;              // steady, mixed: jobs/s
  double duration_s = 10;          // steady, mixed
  std::size_t payload_bytes = 100; // drain, steady (mixed mixes sizes)
  unsigned repeat = 1;
  bool json = false;
  bool events = false; // with the queue's events on
};
// Returns the process exit code: 1 if a job was lost or duplicated.
int bench(const config& cfg, const bench_args& a);

// /proc figures of one process: CPU (user + system) in seconds, RSS in bytes; nothing when it is
// gone. (The workers' cost per job; tests: a worker that must not spin.)
struct proc_sample {
  double cpu_s = 0;
  std::uint64_t rss = 0;
};
std::optional<proc_sample> read_proc(pid_t pid);
std::vector<pid_t> children_of(pid_t pid);
// One section of Redis's INFO as name -> value.
std::map<std::string, std::string> info_fields(std::string_view text);

struct idle_args {
  std::size_t queues = 10; // idle queues each serve tree consumes
  unsigned hosts = 1;      // serve trees (masters) at once, as on that many hosts
  double duration_s = 10;
  bool json = false;
};
// `forq bench idle` (idle.cpp): what idle queues cost Redis and the workers.
int idle(const config& cfg, const idle_args& a);

} // namespace forq::bench
