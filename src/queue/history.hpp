#pragma once

// A queue's figures by the minute, kept in Redis for the dashboard (docs/protocol.md, "Figures
// by the minute"): jobs done, attempts failed and the pick-up latency of attempts started, in
// buckets, added to by every worker every 10 s (minutes.lua) and read as each minute's
// throughput and latency percentiles.

#include "forq/client.hpp"
#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forq::queue::history {

// Upper bounds of the pick-up latency buckets, µs; one more bucket holds what is over 60 s.
inline constexpr std::array<std::int64_t, 18> bounds_us{
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
inline constexpr std::size_t bucket_count = bounds_us.size() + 1;
using buckets = std::array<std::uint64_t, bucket_count>;

inline constexpr int kept_minutes = 60;

std::size_t bucket_of(std::int64_t us);

// The latency below which a share `q` (0 to 1) of the counts falls, in ms: linear inside its
// bucket (the first starts at 0); the bucket over 60 s answers 60,000. None when all are 0.
std::optional<double> quantile_ms(const buckets& counts, double q);

// What one consumer did since its last flush.
struct delta {
  std::uint64_t done = 0, failed = 0;
  buckets pickup{};
  bool empty() const;
};

// The minute `epoch_ms` falls in (the hash's minute numbers).
inline std::int64_t minute_of(std::int64_t epoch_ms) {
  return epoch_ms / 60000;
}

// Adds each queue's delta to its current minute: one minutes.lua call a queue, pipelined in one
// request on a single Redis, one request a queue on a cluster (a server without the script gets
// it loaded). Answers which deltas were added (on a Redis Cluster one primary may refuse, or be
// down, while others take theirs: a delta not added goes with the next call, one added must
// not), or the error when none was.
boost::asio::awaitable<expected<std::vector<bool>>>
add(redis::connection& conn, const std::vector<std::pair<std::string, delta>>& deltas,
    std::int64_t minute, redis::exec_options opts = {});

// The `n` minutes up to and including `now_minute`, oldest first, from the hash's HGETALL
// reply (missing minutes are zeros).
std::vector<minute_figures> read(const redis::reply& all, std::int64_t now_minute, int n);

} // namespace forq::queue::history
