// forq::client's side of a queue's events (forq/client.hpp, docs/job-control.md "Events"):
// turning them on and off, and reading them.
#include "forq/client.hpp"
#include "forq/error.hpp"
#include "forq/queue/limits.hpp"
#include "queue/protocol.hpp"

#include <boost/json/parse.hpp>

#include <charconv>

namespace forq {

namespace json = boost::json;

namespace {

// Fields that hold numbers, and fields that hold JSON, in an event's JSON form.
bool numeric(std::string_view f) {
  return f == "attempt" || f == "stalls" || f == "run_at_ms";
}
bool holds_json(std::string_view f) {
  return f == "progress" || f == "result";
}

// An XRANGE / XREAD entry: [id, [field, value, ...]].
std::optional<queue_event> event_of(const redis::reply& entry) {
  if (!entry.is_array() || entry.elements().size() != 2) return std::nullopt;
  const auto& kv = entry.elements()[1];
  if (!kv.is_array()) return std::nullopt;
  queue_event e;
  e.event_id = std::string(entry.elements()[0].str());
  for (std::size_t i = 0; i + 1 < kv.elements().size(); i += 2) {
    std::string f(kv.elements()[i].str()), v(kv.elements()[i + 1].str());
    if (f == "event")
      e.event = std::move(v);
    else if (f == "id")
      e.job_id = std::move(v);
    else
      e.fields.emplace_back(std::move(f), std::move(v));
  }
  if (e.event.empty()) return std::nullopt; // not an event: written by someone else
  return e;
}

std::vector<queue_event> events_of(const redis::reply& entries) {
  std::vector<queue_event> out;
  if (!entries.is_array()) return out;
  for (const auto& one : entries.elements())
    if (auto e = event_of(one)) out.push_back(std::move(*e));
  return out;
}

} // namespace

json::object queue_event::to_json() const {
  json::object o;
  o["event_id"] = event_id;
  std::int64_t ms = 0;
  std::from_chars(event_id.data(), event_id.data() + event_id.size(), ms);
  o["at_ms"] = ms;
  o["event"] = event;
  o["id"] = job_id;
  for (const auto& [f, v] : fields) {
    if (numeric(f)) {
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && p == v.data() + v.size()) {
        o[f] = n;
        continue;
      }
    } else if (holds_json(f)) {
      boost::system::error_code ec;
      auto parsed = json::parse(v, ec);
      if (!ec) {
        o[f] = std::move(parsed);
        continue;
      }
    }
    o[f] = v;
  }
  return o;
}

boost::asio::awaitable<expected<>> client::set_events(std::string_view queue,
                                                      std::optional<std::int64_t> max) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  if (max)
    if (auto ok = queue::check_bounds(queue::events_max_bounds, *max); !ok)
      co_return error(errc::invalid_value, "events " + ok.error().message());
  queue::keys k(queue);
  redis::request req;
  if (max) {
    req.push("HSET", k.meta, "events", std::to_string(*max));
  } else {
    req.push("HDEL", k.meta, "events");
    req.push("DEL", k.events);
  }
  co_return co_await change_meta(queue, std::move(req));
}

boost::asio::awaitable<expected<std::vector<queue_event>>>
client::events(std::string_view queue, std::string_view after, std::size_t count,
               std::chrono::milliseconds block) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  queue::keys k(queue);
  const auto n = std::to_string(std::max<std::size_t>(1, count));
  redis::request req;
  if (block.count() > 0)
    req.push("XREAD", "COUNT", n, "BLOCK", std::to_string(block.count()), "STREAMS", k.events,
             after);
  else
    req.push("XREAD", "COUNT", n, "STREAMS", k.events, after);
  auto o = opts_;
  o.extra_timeout = block; // the wait is not the server being slow
  auto r = redis::connection::single(co_await conn_.exec(req, o));
  if (!r) co_return r.error();
  if (r->is_error()) {
    if (r->str().find("Invalid stream ID") != std::string_view::npos)
      co_return error(errc::invalid_value, "\"" + std::string(after) + "\" is not an event id");
    co_return error(errc::redis_refused, std::string(r->str()));
  }
  // [[stream, [entries]]], or nil when nothing came.
  if (!r->is_array() || r->elements().empty()) co_return std::vector<queue_event>{};
  const auto& one = r->elements()[0];
  if (!one.is_array() || one.elements().size() != 2) co_return std::vector<queue_event>{};
  co_return events_of(one.elements()[1]);
}

boost::asio::awaitable<expected<std::vector<queue_event>>>
client::last_events(std::string_view queue, std::size_t count) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  queue::keys k(queue);
  redis::request req("XREVRANGE", k.events, "+", "-", "COUNT",
                     std::to_string(std::max<std::size_t>(1, count)));
  auto r = redis::connection::single(co_await exec(req));
  if (!r) co_return r.error();
  if (r->is_error()) co_return error(errc::redis_refused, std::string(r->str()));
  auto out = events_of(*r);
  std::reverse(out.begin(), out.end());
  co_return out;
}

} // namespace forq
