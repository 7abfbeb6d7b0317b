#pragma once

// How the short-lived commands (ops.cpp, bench) reach Redis.

#include "config/config.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace forq::master {

// Connects to `url` (named forq:<host>:<pid>:<role> in CLIENT LIST), waits until the
// connection is ready (at most its connect timeout and 2 s), runs `body` and returns its exit
// code. An unreachable Redis, a bad URL (exit 2) or an exception from `body` is one message on
// stderr and a non-zero code: never a hang.
// The connection's settings but the URL come from `cfg` (worker::redis_options).
int with_connection(const config& cfg, const std::string& url, std::string_view role,
                    std::function<boost::asio::awaitable<int>(redis::connection&)> body);

// One message on stderr: "forq: <message>".
void fail(const std::string& message);

// with_connection to the configured Redis (redis.url), or to the embedded one a running
// `forq serve` owns in the data directory; none: one message and exit 1.
int with_redis(const config& cfg,
               std::function<boost::asio::awaitable<int>(redis::connection&)> body);

} // namespace forq::master
