// The handlers every forq has (docs/handlers.md); their names are checked in config/names.cpp.
#include "forq/handlers.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <array>

namespace forq::handlers {

using namespace boost::asio::experimental::awaitable_operators;
namespace {

namespace asio = boost::asio;

// A whole-number member of a JSON object payload, or nothing.
std::optional<std::int64_t> int_member(std::string_view payload, std::string_view key) {
  boost::system::error_code ec;
  auto v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto* x = v.as_object().if_contains(key);
  if (!x || !x->is_int64()) return std::nullopt;
  return x->as_int64();
}

} // namespace

queue::handler_map builtins() {
  queue::handler_map h;
  h.emplace("noop",
            [](const queue::delivered_job&, queue::context&) -> asio::awaitable<queue::outcome> {
              co_return queue::outcome::success();
            });
  h.emplace("echo",
            [](const queue::delivered_job& j, queue::context&) -> asio::awaitable<queue::outcome> {
              co_return queue::outcome::success(j.payload);
            });
  h.emplace(
      "sleep",
      [](const queue::delivered_job& j, queue::context& ctx) -> asio::awaitable<queue::outcome> {
        auto ms = int_member(j.payload, "ms");
        if (!ms || *ms < 0 || *ms > 600000)
          co_return queue::outcome::failure(
              "sleep needs a payload {\"ms\": N}, N from 0 to 600000");
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(*ms));
        // Until the time is up, or a cancel (a job's cancel, the queue's timeout, the worker
        // leaving) comes first.
        co_await (t.async_wait(asio::as_tuple(asio::use_awaitable)) || ctx.until_cancelled());
        // Cut short by a cancel: not a success.
        if (ctx.cancelled()) co_return queue::outcome::cancelled(ctx.cancel_reason());
        co_return queue::outcome::success();
      });
  h.emplace("fail",
            [](const queue::delivered_job& j, queue::context&) -> asio::awaitable<queue::outcome> {
              auto times = int_member(j.payload, "times");
              if (!times || *times < 0)
                co_return queue::outcome::failure("fail needs a payload {\"times\": N}, N >= 0");
              if (j.attempt < *times)
                co_return queue::outcome::retry_later("failing on purpose: attempt " +
                                                      std::to_string(j.attempt + 1) +
                                                      " of the first " + std::to_string(*times));
              co_return queue::outcome::success("{\"attempts\":" + std::to_string(j.attempt + 1) +
                                                "}");
            });
  return h;
}

} // namespace forq::handlers
