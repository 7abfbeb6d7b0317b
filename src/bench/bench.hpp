#pragma once

// `forq bench drain|steady|mixed` (bench.cpp, docs/benchmarks.md): a workload end to end
// through forq serve's process model, measured and verified.

#include "forq/config.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace forq::bench {

struct bench_args {
  std::string workload;            // drain | steady | mixed
  std::size_t jobs = 100000;       // drain
  double rate = 1000;              // steady, mixed: jobs/s
  double duration_s = 10;          // steady, mixed
  std::size_t payload_bytes = 100; // drain, steady (mixed mixes sizes)
  unsigned repeat = 1;
  bool json = false;
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

} // namespace forq::bench
