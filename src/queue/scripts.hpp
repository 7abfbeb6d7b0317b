#pragma once

// The protocol's Lua scripts (src/lua/*.lua, embedded at build time), each hashed once.
#include "forq_lua.hpp"
#include "redis/script.hpp"

namespace forq::queue::detail {

struct protocol_scripts {
  redis::script init_queue{"init_queue", lua::init_queue_lua};
  redis::script enqueue_unique{"enqueue_unique", lua::enqueue_unique_lua};
  redis::script fetch{"fetch", lua::fetch_lua};
  redis::script tidy{"tidy", lua::tidy_lua};
  redis::script fail{"fail", lua::fail_lua};
  redis::script promote{"promote", lua::promote_lua};
  redis::script handback{"handback", lua::handback_lua};
  redis::script enqueue_delayed{"enqueue_delayed", lua::enqueue_delayed_lua};
  redis::script dead{"dead", lua::dead_lua};
  redis::script rate{"rate", lua::rate_lua};
  redis::script schedule_upsert{"schedule_upsert", lua::schedule_upsert_lua};
  redis::script schedule_remove{"schedule_remove", lua::schedule_remove_lua};
  redis::script schedule_claim{"schedule_claim", lua::schedule_claim_lua};
  redis::script schedule_pause{"schedule_pause", lua::schedule_pause_lua};
  redis::script minutes{"minutes", lua::minutes_lua};
  redis::script results{"results", lua::results_lua};
  redis::script progress{"progress", lua::progress_lua};
  redis::script cancel{"cancel", lua::cancel_lua};
  redis::script added{"added", lua::added_lua};
  redis::script job{"job", lua::job_lua};
};

inline const protocol_scripts& scripts() {
  static const protocol_scripts all;
  return all;
}

} // namespace forq::queue::detail
