#pragma once

// Runs one job through one handler with a real consumer on a real redis-server, until the job
// is done or dead: how the handler tests (exec, http) drive a handler end to end.
#include "forq/client.hpp"
#include "queue/consumer.hpp"
#include "redis/pool.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace forq::test {

struct one_job {
  std::optional<job_info> info;     // as client::get_job sees it afterwards
  std::chrono::milliseconds took{}; // from enqueue to done or dead
};

// Queue "work", handler name "x", retry backoff 10 ms fixed, `max_attempts`, `lease`.
// `midway`, if given, runs right after the enqueue (while the job is being worked on);
// `configure`, if given, changes the consumer's options last.
// `make` builds the handler inside the test's event loop: a handler may hold I/O objects of
// that loop (the http handler keeps connections), so it must not outlive it.
one_job run_one_job(const redis::pool_options& pool, std::function<queue::handler()> make,
                    const std::string& payload, int max_attempts,
                    std::chrono::milliseconds lease = std::chrono::seconds(30),
                    std::function<boost::asio::awaitable<void>()> midway = {},
                    std::function<void(queue::consumer_options&)> configure = {});

} // namespace forq::test
