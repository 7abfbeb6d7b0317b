#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace forq::test {

using namespace std::chrono_literals;

// A private temporary directory, removed with everything in it at destruction. Kept short, so a
// unix socket inside it fits the 107-byte limit.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& file, std::string_view content,
                bool executable = false);
std::string read_file(const std::filesystem::path& file);

// A process the test started: its stdout and stderr go to files the test can read at any time.
// It gets SIGKILL from the kernel if the test process dies, and from the destructor if still
// running, so nothing a test starts outlives it.
class child_process {
 public:
  // env: "NAME=value" entries added to the test's environment, minus every FORQ_* variable
  // (so the developer's own settings never leak into a test); "NAME=" alone removes NAME.
  explicit child_process(std::vector<std::string> argv, std::vector<std::string> env = {});
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;

  // The wait status once the process exited within the limit; nothing if it is still running.
  std::optional<int> wait_for(std::chrono::milliseconds limit);
  bool running();

  std::string out() const;
  std::string err() const;
  // Polls stderr until it contains `text`, the process exits, or the limit passes.
  bool wait_for_err(std::string_view text, std::chrono::milliseconds limit = 15s);

 private:
  temp_dir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs a command to completion (killed after `limit`) and returns what it did.
struct run_result {
  int exit_code = -1; // -1 if killed by a signal or timed out
  std::string out;
  std::string err;
};
run_result run(std::vector<std::string> argv, std::vector<std::string> env = {},
               std::chrono::milliseconds limit = 30s);

// True once pid is gone (or a zombie nobody has reaped yet: it no longer runs).
bool process_gone(pid_t pid);
bool wait_process_gone(pid_t pid, std::chrono::milliseconds limit);

} // namespace forq::test
