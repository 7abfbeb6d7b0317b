// forq-wordcount: a complete program on forq's C++ API. It is the forq command line (serve,
// enqueue, job, ...) with two more handlers:
//
//   count_words  {"text": "..."}        -> {"words": N, "lines": N}; no "text": dead at once
//   square_later {"n": N, "ms": M}      -> waits M ms on the event loop (never blocking it),
//                                          reporting progress halfway, then {"square": N*N}
// and one schedule, morning-count: count_words every morning at 06:00 in London.
//
// Try it (an embedded Redis in ./.forq-wordcount):
//   forq-wordcount serve --data-dir .forq-wordcount &
//   forq-wordcount enqueue --data-dir .forq-wordcount --handler count_words '{"text":"a b c"}'
//   forq-wordcount job --data-dir .forq-wordcount <the id it printed>
#include <forq/forq.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <string>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// The payload as a JSON object, or nothing (forq has already checked that it is JSON).
json::object payload_object(const forq::job& j) {
  auto v = json::parse(j.payload);
  return v.is_object() ? v.as_object() : json::object();
}

asio::awaitable<forq::result> count_words(const forq::job& j, forq::context&) {
  auto payload = payload_object(j);
  auto* text = payload.if_contains("text");
  if (!text || !text->is_string())
    co_return forq::result::failure("count_words needs a payload {\"text\": \"...\"}");
  std::int64_t words = 0, lines = 0;
  bool in_word = false;
  for (char c : text->as_string()) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!space && !in_word) ++words;
    in_word = !space;
    if (c == '\n') ++lines;
  }
  if (!text->as_string().empty() && text->as_string().back() != '\n') ++lines;
  json::object out;
  out["words"] = words;
  out["lines"] = lines;
  co_return forq::result::success(json::serialize(out));
}

asio::awaitable<forq::result> square_later(const forq::job& j, forq::context& ctx) {
  auto payload = payload_object(j);
  auto* n = payload.if_contains("n");
  auto* ms = payload.if_contains("ms");
  if (!n || !n->is_int64() || n->as_int64() < -3037000499 || n->as_int64() > 3037000499)
    co_return forq::result::failure("square_later needs {\"n\": N}, |N| < 3037000500");
  if (ms && (!ms->is_int64() || ms->as_int64() < 0 || ms->as_int64() > 60000))
    co_return forq::result::failure("\"ms\" must be 0 to 60000");
  // Other jobs run on this worker's loop while this one waits, in two halves with progress
  // between them (`forq-wordcount job ID` shows it meanwhile). If the attempt is cancelled
  // (the queue's --attempt-timeout), the wait ends at once with an exception: nothing to add.
  const auto half = std::chrono::milliseconds(ms ? ms->as_int64() / 2 : 0);
  asio::steady_timer wait(co_await asio::this_coro::executor, half);
  co_await wait.async_wait(asio::use_awaitable);
  ctx.progress(R"({"half":true})");
  wait.expires_after(half);
  co_await wait.async_wait(asio::use_awaitable);
  json::object out;
  out["square"] = n->as_int64() * n->as_int64();
  co_return forq::result::success(json::serialize(out));
}

} // namespace

int main(int argc, char** argv) {
  forq::handler_map handlers;
  handlers.emplace("count_words", count_words);
  handlers.emplace("square_later", square_later);
  // A schedule declared beside the handlers: a word count every morning at 06:00 in London
  // (docs/schedules.md). Every worker puts it in Redis as it starts; each morning is one job.
  forq::schedule_list schedules{{.name = "morning-count",
                                 .cron = "0 6 * * *",
                                 .tz = "Europe/London",
                                 .handler = "count_words",
                                 .payload = R"({"text":"good morning"})"}};
  return forq::run(argc, argv, std::move(handlers), std::move(schedules));
}
