#pragma once

// A queue's events as Server-Sent Events (GET /v1/queues/{queue}/events; docs/http.md,
// docs/job-control.md "Events"). Like the API's waits, nothing blocks inside Redis: the
// worker's command connection is shared, so each stream reads the queue's events with a plain
// XREAD every 200 ms, and sends each as `id: <event id>` and `data: <the event as JSON>`.

#include "forq/client.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace forq::http {

struct http_context;

// One SSE message: `id:` (what Last-Event-ID sends back on a reconnect) and one `data:` line.
std::string sse_message(const queue_event& e);

// Sends the queue's events through `write` (false: the client is gone) from after `after`, or
// when it is empty from the newest `last` ones, until the client goes or the worker leaves; a
// comment every 15 s keeps proxies from closing a quiet stream, and finds a client gone.
boost::asio::awaitable<void>
stream_events(http_context& ctx, std::string queue, std::string after, std::int64_t last,
              std::function<boost::asio::awaitable<bool>(std::string)> write);

} // namespace forq::http
