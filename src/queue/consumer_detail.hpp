#pragma once

// What the consumer's parts (consumer.cpp: fetching; attempts.cpp: running, acknowledging,
// failing; upkeep.cpp: promotion, leases, stall recovery, tidying, healing) share. Private to
// src/queue.

#include "forq/queue/producer.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace forq::queue::detail {

namespace asio = boost::asio;
using std::chrono::milliseconds;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
inline const std::string group(keys::group);

// Milliseconds since the epoch, `plus` from now, as text for Redis.
std::string now_ms(milliseconds plus = milliseconds(0));
// The priority of a stream key: forq:{q}:stream:p5 -> 5; the plain stream -> 0.
int priority_of(std::string_view stream);
std::string host_and_pid();
// Waits until the timer is cancelled.
asio::awaitable<void> wait(asio::steady_timer& t);
asio::awaitable<void> pause_for(milliseconds d);
// results:data's value for a finished job (docs/protocol.md), or empty when the results index
// alone says enough.
std::string result_record(const std::string& result, int attempt);

} // namespace forq::queue::detail
