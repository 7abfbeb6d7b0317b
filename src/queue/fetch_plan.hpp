#pragma once

// The consumer's fetching decisions, apart from its I/O (consumer.cpp's fetch_loop carries them
// out): what to do next, how to read, and what to return after a read. Pure functions of what
// the loop knows; unit-tested in tests/unit/fetch_plan_test.cpp.

#include <cstddef>

namespace forq::queue {

// What fetch_loop knows when it decides its next step.
struct fetch_view {
  bool stopping = false;
  std::size_t waiting = 0;     // fetched beyond the free slots, not started yet
  int waiting_priority = 0;    // the first waiting job's priority
  std::size_t room = 0;        // slots this consumer may fill now
  bool paused = false;         // as last looked at
  bool pause_look_due = false; // the last look is older than pause_check_every
  bool idle = false;           // the last wait inside Redis brought nothing (no look since)
  bool exact = false;          // several priorities had jobs lately: fetch exactly, by priority
  bool rate_limited = false;   // the queue has a rate limit
  bool last_full = false;      // the last fetch got all it asked for: more is likely waiting
};

struct fetch_step {
  enum class kind {
    stop,              // the loop ends (what still waits is handed back)
    look_at_pause,     // read the queue's paused flag, then decide again
    hand_back_waiting, // paused: the waiting jobs go back to the queue
    start_waiting,     // start min(room, waiting) of them; `higher_streams` > 0: first fetch
                       // exactly from that many higher-priority streams (they go first)
    wait_for_slot,     // nothing can start: wait for a free slot (`hungry`: claim a share)
    wait_paused,       // the queue is paused: look again, and while still paused wait for the
                       // doorbell (a resume rings it) or paused_wait
    fetch,             // take rate permits for `room` jobs and read (plan_read)
  } what = kind::stop;
  std::size_t higher_streams = 0;
  bool hungry = false;
};

fetch_step plan_fetch(const fetch_view& v);

// How to read `allowed` jobs (permits taken) from the queue.
struct read_plan {
  // First one script call that fills exactly `allowed` slots, highest priority first.
  bool exact_first = false;
  // A rate-limited queue's exact read found nothing: its permits go back before a wait inside
  // Redis (held through it, they would count against a later window).
  bool give_back_if_empty = false;
  // Then (if the exact read found nothing, or there was none) one XREADGROUP over every
  // priority's stream with this COUNT per stream...
  std::size_t count = 0;
  // ...waiting inside Redis for the next job, unless the consumer shares slots with other
  // queues after a full fetch: then it holds `allowed` slots while the read is in flight and
  // does not wait.
  bool block = true;
};

read_plan plan_read(const fetch_view& v, std::size_t allowed, bool shares_slots);

// After a read brought `got` jobs for `allowed` permits (0 when they were given back before
// the wait: those jobs need permits of their own, `reallowed`).
struct read_outcome {
  std::size_t keep = 0;      // jobs to keep (start or wait for a slot)
  std::size_t hand_back = 0; // a rate-limited queue's jobs beyond its permits
  std::size_t give_back = 0; // permits unused
  bool full = false;         // got all it asked for: more is likely waiting
};

read_outcome settle_read(std::size_t got, std::size_t allowed, bool rate_limited);

} // namespace forq::queue
