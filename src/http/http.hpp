#pragma once

// A worker's HTTP server (http.cpp, docs/http.md): probes, /metrics for the whole tree, and the
// JSON API, on the listener the master bound.

#include "config/config.hpp"
#include "forq/redis/connection.hpp"
#include "http/waits.hpp"
#include "process/shared_metrics.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace forq::http {

// What a worker's HTTP server needs.
struct http_context {
  const config* cfg = nullptr;
  process::shared_metrics* metrics = nullptr;
  redis::connection* conn = nullptr; // the worker's command connection
  // /readyz: why this worker is not ready ("Redis unreachable", ...), empty when it is.
  std::function<std::string()> not_ready;
  std::vector<std::string> handlers; // the names this forq runs: others are refused at enqueue
  // How long a request may wait for Redis (the Redis timeout, at most 10 s): then 503.
  std::chrono::milliseconds redis_deadline{5000};
  bool stopping = false;
  // set_progress: when each job's last report was taken (queue + '\n' + id), so one job's
  // reports reach Redis at most every 100 ms from this worker.
  std::map<std::string, std::chrono::steady_clock::time_point> progress_at;
  boost::asio::ip::tcp::acceptor* acceptor = nullptr; // while serve_http runs: close to stop
  // The API's waits for jobs' ends (?wait=): made with the first; closed when the worker
  // leaves (every wait then answers at once). At most max_waits at a time (then 503).
  std::unique_ptr<finished_feed> feed;
  std::size_t waits = 0;
  static constexpr std::size_t max_waits = 10000;
  // GET /v1/queues/{queue}/events streams open now; at most max_event_streams (then 503).
  std::size_t event_streams = 0;
  static constexpr std::size_t max_event_streams = 256;
};
// Accepts on the listener the master bound (a copy of listener_fd) until ctx.stopping.
boost::asio::awaitable<void> serve_http(http_context& ctx, int listener_fd);
// Serves one connected stream socket (a unix socket: one end of a socketpair) exactly as a
// listener's connection is served; takes the fd. The HTTP fuzz target's way in.
boost::asio::awaitable<void> serve_http_stream(http_context& ctx, int fd);

} // namespace forq::http
