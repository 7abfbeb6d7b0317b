#include "fetch_plan.hpp"

namespace forq::queue {

fetch_step plan_fetch(const fetch_view& v) {
  using kind = fetch_step::kind;
  fetch_step s;
  if (v.stopping) return s; // stop: what still waits is handed back
  if (v.waiting > 0 && v.room > 0) {
    // Fetched earlier, beyond the free slots: a pause since then sends them back.
    if (v.pause_look_due) {
      s.what = kind::look_at_pause;
    } else if (v.paused) {
      s.what = kind::hand_back_waiting;
    } else {
      s.what = kind::start_waiting;
      // Whatever higher priority reached Redis since goes first.
      if (v.waiting_priority < 9 && v.exact && !v.rate_limited)
        s.higher_streams = static_cast<std::size_t>(9 - v.waiting_priority);
    }
    return s;
  }
  if (v.waiting > 0 || v.room == 0) {
    // Only a queue that has work it cannot start claims its share of the slots.
    s.what = kind::wait_for_slot;
    s.hungry = v.waiting > 0 || v.last_full;
    return s;
  }
  // After a wait that brought nothing, the next wait needs no look of its own: whatever it
  // brings is looked at before it runs. An idle queue costs one command a `block`.
  // Paused: the wait looks again itself and then waits inside Redis for the doorbell.
  if (v.paused) {
    s.what = kind::wait_paused;
    return s;
  }
  s.what = v.pause_look_due && !v.idle ? kind::look_at_pause : kind::fetch;
  return s;
}

read_plan plan_read(const fetch_view& v, std::size_t allowed, bool shares_slots) {
  read_plan r;
  // A rate-limited queue always reads exactly: a plain read can take one per priority.
  r.exact_first = v.exact || v.rate_limited;
  r.give_back_if_empty = r.exact_first && v.rate_limited;
  // With one priority in use (the usual case) a plain read is exact; when its reply shows
  // several, the surplus waits, leased, and reading turns exact for a while.
  r.count = r.exact_first ? 1 : allowed;
  r.block = !(shares_slots && v.last_full);
  return r;
}

read_outcome settle_read(std::size_t got, std::size_t allowed, bool rate_limited) {
  read_outcome o;
  o.full = got >= allowed;
  o.keep = got;
  if (rate_limited && got > allowed) { // the plain read takes one per priority
    o.hand_back = got - allowed;
    o.keep = allowed;
  }
  if (got < allowed) o.give_back = allowed - got;
  return o;
}

} // namespace forq::queue
