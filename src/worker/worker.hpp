#pragma once

// One worker process of `forq serve` (worker.cpp): its consumers, one per configured queue on
// one Redis pool (consumers.cpp), its handler set and connection settings (setup.cpp), and its
// share of the HTTP listener.

#include "config/config.hpp"
#include "process/shared_metrics.hpp"
#include "queue/consumer.hpp"
#include "redis/pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace forq::worker {

// Runs until SIGTERM/SIGINT (drain) or SIGQUIT (at once), or a fatal error. Returns its exit
// code (exit_codes.hpp).
int run_worker(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
               process::shared_metrics* metrics, const queue::handler_map& program);

// How forq talks to the Redis of `cfg` at `ep` (a parsed redis.url, or the embedded Redis's
// socket): the timeouts (redis.timeout), the sentinels' password and redis.durability. Every
// connection forq makes, worker or command line, starts from this.
redis::connection_options redis_options(const config& cfg, const redis_endpoint& ep);

// The handlers of a worker: the built-ins (noop, echo, sleep, fail), the configured ones and
// the program's.
queue::handler_map worker_handlers(const config& cfg, const queue::handler_map& program);

// Why the program's handlers and the configuration cannot run together (a name used twice, a
// queue's default handler that does not exist), or nothing.
std::optional<std::string> check_handlers(const config& cfg, const queue::handler_map& program);

// A worker's consumers, one per configured queue, on one pool. With `keepers` (the serve tree's
// shared memory), the workers of the tree elect one keeper per queue there
// (consumer_options::keeper); without it, every consumer keeps its queue.
class consumers {
 public:
  consumers(boost::asio::any_io_executor ex, const config& cfg, const std::string& url,
            const queue::handler_map& program, process::shared_metrics* keepers = nullptr);
  ~consumers();
  // on_fatal(exit code): a consumer cannot go on (schema mismatch, a refused key, ...).
  void start(std::function<void(int)> on_fatal);
  // Stop fetching; with wait_for_running, let jobs in flight finish for up to drain_timeout;
  // hand back whatever still runs; close Redis.
  boost::asio::awaitable<void> drain(bool wait_for_running);
  std::uint64_t done() const;
  bool redis_ready() const;     // the command connection is up (acks can go out)
  bool fetching_ready() const;  // every connection is up: acks and the blocking fetches (/readyz)
  bool refusing_writes() const; // a consumer's last write was refused (-OOM, -READONLY, ...)
  // Why this worker cannot consume now, for /readyz; empty when it can.
  std::string not_ready() const;
  redis::connection& commands() { return pool_->commands(); }
  // Adds what happened since the last call to the shared counters of this worker's slot.
  void publish(process::slot_counters& slot);
  // Each queue's running attempts, slots and jobs done, for the worker's presence in Redis.
  boost::json::array describe_queues() const;
  // Adds what each consumer did since the last call to its queue's figures by the minute in
  // Redis (queue/history.hpp); a flush Redis did not take is added again to the next one. One
  // asked while another is out waits for it (until `deadline`), then adds what is left.
  boost::asio::awaitable<void> flush_minutes(std::chrono::steady_clock::time_point deadline);
  // Sent by drain() just before the connections close (the worker's presence removed).
  redis::request farewell;
  bool said_farewell = false;

 private:
  const config& cfg_;
  std::unique_ptr<redis::pool> pool_;
  std::vector<std::unique_ptr<queue::consumer>> list_;
  // Waits until done() or `until`, woken by finished_bell_ (no polling).
  boost::asio::awaitable<void> wait_until(const std::function<bool()>& done,
                                          std::chrono::steady_clock::time_point until);

  std::size_t finished_ = 0;
  bool pool_done_ = false;
  // Rung (its wait cancelled) whenever a consumer or the pool ends: drain() waits on it.
  boost::asio::steady_timer finished_bell_;
  std::vector<queue::consumer::counters> published_;
  std::vector<queue::consumer::counters> flushed_; // what flush_minutes() has added
  bool flushing_ = false;
  boost::asio::steady_timer flush_done_; // rung when a flush_minutes() ends
  std::uint64_t published_connects_ = 0;
  // Five times a second: a queue whose keeper role came free (its holder drains or exited) is
  // told at once, so a reload or a dead worker leaves its schedules unlooked-at for at most
  // ~0.2 s (a `missed = skip` slot runs only if at most a second late). Reads shared memory.
  process::shared_metrics* keepers_ = nullptr;
  boost::asio::steady_timer keeper_watch_;
  bool watching_ = true;
};

} // namespace forq::worker
