#pragma once

#include "backoff.hpp"

// The master's slot table and the decisions it makes about its workers, without processes,
// signals or timers (serve.cpp does those): unit-tested on its own. A slot is a worker's place
// (its number, 1, 2, ...: the log role "worker 3", its metrics slot); the process in it comes
// and goes.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace forq::master {

// What a slot is doing. The state is the truth: pid is valid exactly while running or draining.
enum class slot_state {
  waiting,  // no process: not started yet, or a restart is due after its backoff
  running,  // a process consumes
  draining, // its process was told to stop (TERM or QUIT) and has not exited yet
};

struct slot {
  unsigned number = 0;
  slot_state state = slot_state::waiting;
  pid_t pid = -1;
  std::chrono::steady_clock::time_point started{};
  // The waits between restarts in a crash loop: 1 s, 2 s, 4 s, ... up to 30 s.
  forq::backoff restarts{{std::chrono::seconds(1), std::chrono::seconds(30)}};
  bool retiring = false; // removed (TTOU, a reload): never restarted
};

// What to do about a worker that exited.
struct exit_decision {
  enum class kind {
    forget,    // a retired slot: drop it from the table
    none,      // forq is stopping: nothing more
    restart,   // start it again after `delay`
    stop_forq, // it exited with the fatal code: stop everything, exit `exit_code`
  } what = kind::none;
  std::chrono::milliseconds delay{0};
  int exit_code = 0;
};

class slot_table {
 public:
  // A new slot, waiting for its process; numbers are never reused.
  slot& add();
  slot* find(unsigned number);
  // The process `pid` of slot `s` was started at `now`.
  void started(slot& s, pid_t pid, std::chrono::steady_clock::time_point now);
  // Its process was told to stop.
  void draining(slot& s);
  // Its process exited: the slot waits (or is forgotten), and the decision says what next.
  // `fatal`: it exited with the fatal code (2). `ran`: how long that process lived.
  exit_decision exited(slot& s, bool fatal, std::chrono::milliseconds ran, bool stopping);
  // The slot TTOU (or a reload shrinking the tree) retires: the newest not retiring, never the
  // last one. Marks it retiring; nothing if only one is left.
  slot* retire_newest();
  // Marks slot `number` retiring (a reload replacing it), if it is still live.
  slot* retire(unsigned number);

  std::size_t live() const;         // slots not retiring: the tree's size as operators see it
  std::size_t with_process() const; // running or draining
  bool none_with_process() const { return with_process() == 0; }
  std::vector<slot>& slots() { return slots_; }
  const std::vector<slot>& slots() const { return slots_; }

 private:
  std::vector<slot> slots_;
  unsigned next_number_ = 1;
};

// A wait for an operator: "100 ms", "4 s".
std::string say_delay(std::chrono::milliseconds d);

} // namespace forq::master
