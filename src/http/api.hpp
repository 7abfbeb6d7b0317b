#pragma once

// The JSON API's calls (api.cpp, docs/http.md): what route() decided, carried out against Redis
// through forq::client and schedule::, and the answer each gives. The session (http.cpp) reads
// requests, routes them, and sends these answers; an `events` answer is a stream it sends.

#include "http/http.hpp"
#include "http/routes.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace forq::http {

// An answer: status, body and its type, more headers.
struct reply_t {
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string body;
  std::string type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{};
  // GET .../events: not a body but a stream of the queue's events (events.hpp), from `after` or
  // the newest `last`; the session sends it until the client or the worker goes.
  std::optional<api_call> events{};
};

reply_t json_reply(boost::beast::http::status s, const boost::json::value& v);
reply_t error_reply(boost::beast::http::status s, const std::string& reason);
reply_t to_reply(answer a); // route()'s answer as a reply
// Carries out what route() decided, against Redis through forq::client.
boost::asio::awaitable<reply_t> run_call(http_context& ctx, api_call call);

} // namespace forq::http
