#include "master/supervisor.hpp"

#include "exit_codes.hpp"

#include <algorithm>

namespace forq::master {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

slot& slot_table::add() {
  slot s;
  s.number = next_number_++;
  slots_.push_back(s);
  return slots_.back();
}

slot* slot_table::find(unsigned number) {
  for (auto& s : slots_)
    if (s.number == number) return &s;
  return nullptr;
}

void slot_table::started(slot& s, pid_t pid, std::chrono::steady_clock::time_point now) {
  s.pid = pid;
  s.state = slot_state::running;
  s.started = now;
}

void slot_table::draining(slot& s) {
  if (s.state == slot_state::running) s.state = slot_state::draining;
}

exit_decision slot_table::exited(slot& s, bool fatal, milliseconds ran, bool stopping) {
  s.pid = -1;
  s.state = slot_state::waiting;
  exit_decision d;
  if (stopping) return d; // kind::none
  if (s.retiring) {
    const unsigned number = s.number;
    std::erase_if(slots_, [&](const slot& x) { return x.number == number; });
    d.what = exit_decision::kind::forget;
    return d;
  }
  if (fatal) {
    d.what = exit_decision::kind::stop_forq;
    d.exit_code = exit_code::fatal;
    return d;
  }
  // A worker that ran a good while is replaced at once; one that keeps dying waits longer each
  // time (no fork storm): 1 s, 2 s, 4 s, ... up to 30 s.
  d.what = exit_decision::kind::restart;
  if (ran > 60s) {
    s.restarts.reset();
    d.delay = 100ms;
  } else {
    d.delay = s.restarts.next();
  }
  return d;
}

slot* slot_table::retire_newest() {
  if (live() <= 1) return nullptr;
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it)
    if (!it->retiring) {
      it->retiring = true;
      return &*it;
    }
  return nullptr;
}

slot* slot_table::retire(unsigned number) {
  auto* s = find(number);
  if (!s || s->retiring) return nullptr;
  s->retiring = true;
  return s;
}

std::size_t slot_table::live() const {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const slot& s) { return !s.retiring; }));
}

std::size_t slot_table::with_process() const {
  return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](const slot& s) {
    return s.state == slot_state::running || s.state == slot_state::draining;
  }));
}

std::string say_delay(milliseconds d) {
  return d < 1s ? std::to_string(d.count()) + " ms" : std::to_string(d.count() / 1000) + " s";
}

} // namespace forq::master
