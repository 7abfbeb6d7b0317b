#pragma once

// The HTTP API's waits for a job's end (GET /v1/jobs/{id}?wait=, POST .../jobs?wait=;
// docs/job-control.md), without holding a connection: the worker's command connection is
// shared, so nothing here blocks inside Redis. One feed per worker reads each watched queue's
// `finished` stream (the ends of waitable jobs) with a plain XREAD every 50 ms while somebody
// waits on that queue, however many do, and wakes the waiters of the ids it reads.

#include "forq/client.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace forq::http {

class finished_feed {
 public:
  explicit finished_feed(redis::connection& conn)
      : conn_(conn) {}

  // Waits until `id` of `queue` ends (completed, dead, cancelled), is gone, or `until`, and
  // returns it as it stands then. Every Redis call gives up after `per_call`. A job that
  // ended before the call returns at once; a waitable one wakes the wait within ~50 ms of its
  // end, another is looked up again every 100 ms growing to 1 s.
  boost::asio::awaitable<expected<std::optional<job_info>>>
  wait(const std::string& queue, const std::string& id, std::chrono::steady_clock::time_point until,
       std::chrono::milliseconds per_call);

  // The worker leaves: every wait ends now with the job as it stands.
  void close();

 private:
  struct waiter {
    std::string id;
    boost::asio::steady_timer* wake; // cancelled when the reader sees the job's end
  };
  struct watched {
    std::string last = "0-0"; // the finished stream's entry read last
    std::multimap<std::string, waiter*, std::less<>> waiters;
    bool reading = false;
  };
  boost::asio::awaitable<void> read_loop(std::string queue, std::shared_ptr<watched> w);

  redis::connection& conn_;
  std::map<std::string, std::shared_ptr<watched>, std::less<>> queues_;
  bool closed_ = false;
};

} // namespace forq::http
