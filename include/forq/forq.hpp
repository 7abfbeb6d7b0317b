#pragma once

// forq as a library: write handlers in C++ and run them under forq's whole process model
// (configuration, embedded Redis, pre-fork workers, supervision, signals, HTTP, metrics).
// docs/cpp-api.md; a complete program: examples/wordcount/.
//
//   boost::asio::awaitable<forq::result> resize(const forq::job& j, forq::context& ctx) {
//     ...                                     // co_await anything on the worker's loop
//     ctx.progress(R"({"done":0.5})");        // and report progress, enqueue, hear a cancel
//     co_return forq::result::success(R"({"ok":true})");
//   }
//   int main(int argc, char** argv) { return forq::run(argc, argv, {{"resize", resize}}); }

#include "forq/queue/handler.hpp"
#include "forq/queue/producer.hpp"
#include "forq/schedule.hpp"

namespace forq {

// One attempt of a job, as a handler gets it: id, queue, handler, payload (JSON text), attempt
// (attempts made before this one), max_attempts, priority, and every stream field.
using job = queue::delivered_job;
// What a handler says: result::success(json), result::retry_later(why[, after]),
// result::failure(why) (fail now: dead at once, no retry) or result::cancelled(why). An
// exception thrown is a failed attempt, retried.
using result = queue::outcome;
// What the attempt can do besides returning (forq/queue/handler.hpp): attempt(), stalls(),
// deadline(), progress(json), enqueue(queue, job), cancelled() and until_cancelled(); its
// coroutine is bound to a cancellation slot.
using context = queue::context;
// A handler runs on its worker's single-threaded event loop: co_await, never block. It is
// copied into every worker process (one copy per queue), after fork.
using handler = queue::handler;
using handler_map = queue::handler_map;

// Runs the forq command line (`serve` and every other command; see `--help`) with `handlers`
// beside the built-in and configured ones: `forq::run(argc, argv, handlers)` is the whole main()
// of a program that is forq plus your handlers. Returns the process exit code (0 ok, 1 runtime
// failure, 2 bad usage or configuration, for instance a handler name used twice or not allowed).
// Call it once, from the main thread, before starting any thread: it forks.
int run(int argc, char** argv, handler_map handlers = {});
// The same, with schedules declared beside the handlers (forq/schedule.hpp): a schedule that is
// not right (its expression, zone, name, policies) or a name the `schedules` setting also has in
// that queue is exit 2, said before anything starts.
int run(int argc, char** argv, handler_map handlers, schedule_list schedules);

} // namespace forq
