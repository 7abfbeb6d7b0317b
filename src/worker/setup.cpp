// What a worker is made of, decided before it runs: its handler set (the built-ins, the
// configured exec and http handlers, the program's) and how each of its Redis connections is
// set up from the configuration.
#include "forq/handlers.hpp"
#include "redis/pool.hpp"
#include "worker/worker.hpp"

#include <algorithm>

namespace forq::worker {

// The handlers of a worker: the built-ins (handlers::builtins), the configured ones (`handlers`:
// exec and http) and the program's (forq::run). A job naming a handler that does not exist goes
// to the dead set with the reason, and the queue moves on.
queue::handler_map worker_handlers(const config& cfg, const queue::handler_map& program) {
  auto h = handlers::builtins();
  for (const auto& [name, run] : program)
    h.emplace(name, run);
  for (const auto& spec : cfg.handlers) {
    if (!spec.http.empty()) {
      handlers::http_options o;
      o.url = spec.http;
      o.timeout = spec.timeout;
      o.max_output = spec.max_output;
      h.emplace(spec.name, handlers::http(std::move(o)));
      continue;
    }
    handlers::exec_options o;
    o.command = spec.exec;
    o.timeout = spec.timeout;
    o.retry_exit_code = spec.retry_exit_code;
    o.fail_exit_code = spec.fail_exit_code;
    o.max_output = spec.max_output;
    h.emplace(spec.name, handlers::exec(std::move(o)));
  }
  return h;
}

std::optional<std::string> check_handlers(const config& cfg, const queue::handler_map& program) {
  for (const auto& [name, run] : program) {
    if (auto ok = handlers::check_name(name); !ok) return "the program's " + ok.error().message();
    if (!run) return "the program's handler \"" + name + "\" is empty";
    if (handlers::is_builtin(name))
      return "the program's handler \"" + name + "\" has the name of a built-in handler";
    for (const auto& spec : cfg.handlers)
      if (spec.name == name)
        return "handler \"" + name + "\" is both the program's and configured in `handlers`";
  }
  for (const auto& q : cfg.queues) {
    if (q.default_handler.empty() || handlers::is_builtin(q.default_handler) ||
        program.count(q.default_handler))
      continue;
    bool configured = false;
    for (const auto& spec : cfg.handlers)
      configured = configured || spec.name == q.default_handler;
    if (!configured)
      return "queue \"" + q.name + "\": default handler \"" + q.default_handler +
             "\" is not a handler this forq has (built-in, configured in `handlers`, or the "
             "program's)";
  }
  return std::nullopt;
}

redis::connection_options redis_options(const config& cfg, const redis_endpoint& ep) {
  redis::connection_options o;
  o.endpoint = ep;
  redis::set_timeouts(o, cfg.redis_timeout);
  o.sentinel_password = cfg.redis_sentinel_password;
  o.durability.replicas = cfg.redis_wait_replicas;
  o.durability.timeout = cfg.redis_wait_timeout;
  return o;
}

} // namespace forq::worker
