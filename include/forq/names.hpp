#pragma once

// The rules for names a person writes (queues, handlers, http handlers' URLs): checked by the
// configuration before anything runs, by producers before Redis, by consumers on foreign jobs.
// No sockets, no Redis: the first stage of the pipeline (config) needs them.

#include "forq/error.hpp"

#include <string_view>

namespace forq::queue {
// A queue name: 1 to 128 characters of [A-Za-z0-9_.:-] (no braces: they would break the hash
// tag). Nothing, or errc::invalid_value with why the name is refused.
expected<> check_queue_name(std::string_view name);
} // namespace forq::queue

namespace forq::handlers {
// Nothing, or errc::invalid_value with why a handler name is refused (1 to 128 of A-Z a-z 0-9 _ .
// : -).
expected<> check_name(std::string_view name);
// noop, echo, sleep, fail (handlers.hpp, builtins()).
bool is_builtin(std::string_view name);
// Nothing, or errc::invalid_value with why a URL cannot be an http handler's (only http:// with a
// host).
expected<> check_http_url(std::string_view url);
} // namespace forq::handlers
