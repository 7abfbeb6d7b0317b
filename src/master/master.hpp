#pragma once

// The master of `forq serve` (serve.cpp): starts the embedded Redis unless --redis is given,
// binds the HTTP listener, maps the shared metrics, forks one worker per slot and supervises
// them; signals (docs/signals.md) reload, resize and stop the tree.

#include "config/config.hpp"
#include "forq/queue/handler.hpp"

#include <functional>
#include <string>
#include <variant>

namespace forq::master {

// Returns the process exit code (exit_codes.hpp). `reload` loads the configuration again
// from the same sources (SIGHUP): a config, or why it is refused. `program`: the handlers of the
// program forq runs in (forq::run), for every worker.
int serve(const config& cfg, std::function<expected<config>()> reload,
          const queue::handler_map& program);

} // namespace forq::master
