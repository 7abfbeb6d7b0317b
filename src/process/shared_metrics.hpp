#pragma once

// Counters every process of a serve tree writes and any of them reads (/metrics): one slot per
// worker (its number - 1, modulo max_slots), one set per configured queue (the first
// max_queues), in a MAP_SHARED region the master maps before forking (serve.cpp). Workers add
// to their slot (worker.cpp, consumers::publish); the HTTP server sums them (http.cpp). It also
// says which worker keeps each queue (consumer_options::keeper).

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace forq::process {

struct shared_histogram {
  std::atomic<std::uint64_t> counts[12]{}; // queue::consumer::histogram's buckets
  std::atomic<std::uint64_t> sum_us{0};
};
struct queue_counters {
  std::atomic<std::uint64_t> fetched{0}, done{0}, retried{0}, dead{0}, recovered{0}, handed_back{0},
      cancelled{0}, in_flight{0};
  shared_histogram pickup, run, round_trip;
};
struct slot_counters {
  queue_counters queues[16];
  std::atomic<std::uint64_t> reconnects{0};
};
struct shared_metrics {
  static constexpr std::size_t max_slots = 256, max_queues = 16, max_keepers = 4096;
  std::atomic<std::uint64_t> restarts{0}, workers{0};
  slot_counters slots[max_slots];
  // The pid of the worker keeping each configured queue (queue::claim_keeper), 0: none yet.
  // Queues past max_keepers are kept by every worker.
  std::atomic<std::int32_t> keepers[max_keepers]{};
  static shared_metrics* create(); // nullptr if mmap fails
};

} // namespace forq::process
