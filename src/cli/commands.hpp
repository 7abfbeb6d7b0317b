#pragma once

#include "forq/config.hpp"
#include "forq/queue/consumer.hpp"
#include "forq/redis/pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>

#include <functional>
#include <memory>

#include <optional>
#include <sys/types.h>
#include <string>
#include <vector>

namespace forq::cli {

// Each returns the process exit code (forq/exit_codes.hpp).

// Counters every process of a serve tree writes and any of them reads (/metrics): one slot per
// worker (its number - 1, modulo max_slots), one set per configured queue (the first
// max_queues), in a MAP_SHARED region the master maps before forking.
struct shared_histogram {
  std::atomic<std::uint64_t> counts[12]{}; // queue::consumer::histogram's buckets
  std::atomic<std::uint64_t> sum_us{0};
};
struct queue_counters {
  std::atomic<std::uint64_t> fetched{0}, done{0}, retried{0}, dead{0}, recovered{0},
      handed_back{0}, in_flight{0};
  shared_histogram pickup, run, round_trip;
};
struct slot_counters {
  queue_counters queues[16];
  std::atomic<std::uint64_t> reconnects{0};
};
struct shared_metrics {
  static constexpr std::size_t max_slots = 256, max_queues = 16;
  std::atomic<std::uint64_t> restarts{0}, workers{0};
  slot_counters slots[max_slots];
  static shared_metrics* create(); // nullptr if mmap fails
};

// What a worker's HTTP server needs (http.cpp, docs/http.md).
struct http_context {
  const config* cfg = nullptr;
  shared_metrics* metrics = nullptr;
  redis::connection* conn = nullptr; // the worker's command connection
  // /readyz: why this worker is not ready ("Redis unreachable", ...), empty when it is.
  std::function<std::string()> not_ready;
  std::vector<std::string> handlers; // the names this forq runs: others are refused at enqueue
  // How long a request may wait for Redis (the Redis timeout, at most 10 s): then 503.
  std::chrono::milliseconds redis_deadline{5000};
  bool stopping = false;
  boost::asio::ip::tcp::acceptor* acceptor = nullptr; // while serve_http runs: close to stop
};
// Accepts on the listener the master bound (a copy of listener_fd) until ctx.stopping.
boost::asio::awaitable<void> serve_http(http_context& ctx, int listener_fd);
// Serves one connected stream socket (a unix socket: one end of a socketpair) exactly as a
// listener's connection is served; takes the fd. The HTTP fuzz target's way in.
boost::asio::awaitable<void> serve_http_stream(http_context& ctx, int fd);

// `forq serve`: the long-running service; the master's side (serve.cpp). `reload` loads the
// configuration again from the same sources (SIGHUP): a config, or why it is refused.
// `program`: the handlers of the program forq runs in (forq::run), for every worker.
int serve(const config& cfg, std::function<std::variant<config, std::string>()> reload,
          const queue::handler_map& program);

// One worker process of serve (worker.cpp): runs until SIGTERM/SIGINT (drain) or SIGQUIT (at
// once), or a fatal error. Returns its exit code.
int run_worker(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
               shared_metrics* metrics, const queue::handler_map& program);

// The handlers of a worker: the built-ins (noop, echo, sleep, fail), the configured ones and
// the program's.
queue::handler_map worker_handlers(const config& cfg, const queue::handler_map& program);

// Why the program's handlers and the configuration cannot run together (a name used twice, a
// queue's default handler that does not exist), or nothing.
std::optional<std::string> check_handlers(const config& cfg, const queue::handler_map& program);

// A worker's consumers, one per configured queue, on one pool.
class consumers {
 public:
  consumers(boost::asio::any_io_executor ex, const config& cfg, const std::string& url,
            const queue::handler_map& program);
  ~consumers();
  // on_fatal(exit code): a consumer cannot go on (schema mismatch, a refused key, ...).
  void start(std::function<void(int)> on_fatal);
  // Stop fetching; with wait_for_running, let jobs in flight finish for up to drain_timeout;
  // hand back whatever still runs; close Redis.
  boost::asio::awaitable<void> drain(bool wait_for_running);
  std::uint64_t done() const;
  bool redis_ready() const; // the command connection is up (acks can go out)
  bool fetching_ready() const; // every connection is up: acks and the blocking fetches (/readyz)
  bool refusing_writes() const; // a consumer's last write was refused (-OOM, -READONLY, ...)
  // Why this worker cannot consume now, for /readyz; empty when it can.
  std::string not_ready() const;
  redis::connection& commands() { return pool_->commands(); }
  // Adds what happened since the last call to the shared counters of this worker's slot.
  void publish(slot_counters& slot);

 private:
  const config& cfg_;
  std::unique_ptr<redis::pool> pool_;
  std::vector<std::unique_ptr<queue::consumer>> list_;
  std::size_t finished_ = 0;
  bool pool_done_ = false;
  std::vector<queue::consumer::counters> published_;
  std::uint64_t published_connects_ = 0;
};

// Process titles as ps shows them ("forq: master", "forq: worker 3 [draining]"). init once in
// main() with its argv; set_process_title truncates to the space argv had.
void init_process_title(int argc, char** argv);
void set_process_title(const std::string& title);

// Connects to `url` (named forq:<host>:<pid>:<role> in CLIENT LIST), waits until the
// connection is ready (at most its connect timeout and 2 s), runs `body` and returns its exit
// code. An unreachable Redis, a bad URL (exit 2) or an exception from `body` is one message on
// stderr and a non-zero code: never a hang. The short-lived commands (ops.cpp, bench.cpp).
int with_connection(const std::string& url, std::string_view role,
                    std::chrono::milliseconds redis_timeout,
                    std::function<boost::asio::awaitable<int>(redis::connection&)> body);

// A connection's deadlines from the configuration's redis_timeout: a reply gets all of it;
// connecting and logging in get the smaller of it and 3 s.
void set_timeouts(redis::connection_options& o, std::chrono::milliseconds redis_timeout);

// /proc figures of one process: CPU (user + system) in seconds, RSS in bytes; nothing when it is
// gone. (bench.cpp: the workers' cost per job; tests: a worker that must not spin.)
struct proc_sample {
  double cpu_s = 0;
  std::uint64_t rss = 0;
};
std::optional<proc_sample> read_proc(pid_t pid);

// `forq bench drain|steady|mixed` (bench.cpp, docs/benchmarks.md).
struct bench_args {
  std::string workload;            // drain | steady | mixed
  std::size_t jobs = 100000;       // drain
  double rate = 1000;              // steady, mixed: jobs/s
  double duration_s = 10;          // steady, mixed
  std::size_t payload_bytes = 100; // drain, steady (mixed mixes sizes)
  unsigned repeat = 1;
  bool json = false;
};
int bench(const config& cfg, const bench_args& a);

// The operators' commands (ops.cpp).
struct enqueue_args {
  std::string queue = "default";
  std::string handler;
  std::optional<std::string> id;
  std::optional<std::string> payload; // none: NDJSON on stdin, one payload per line
  long long delay_ms = 0;
  int priority = 0;
  int attempts = 0; // 0: the queue's policy
  std::optional<std::string> retry; // checked by the parser (queue::parse_retry)
};
int enqueue(const config& cfg, const enqueue_args& a);
int queues(const config& cfg, bool as_json);
int job(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
        bool as_json);
struct dead_args {
  std::string action; // list | retry | purge
  std::string queue = "default";
  std::vector<std::string> ids; // retry/purge: none = every dead job
  std::size_t limit = 100;      // list
  bool json = false;
};
int dead(const config& cfg, const dead_args& a);
// pause/resume and limit refuse a queue this Redis does not know (a typo would otherwise set up
// a queue no worker reads) unless `create` says it is meant.
int pause(const config& cfg, const std::string& queue, bool paused, bool create);
// max == 0: remove the limit.
int rate_limit(const config& cfg, const std::string& queue, long long max, long long per_ms,
               bool create);

} // namespace forq::cli
