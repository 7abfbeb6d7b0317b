// forq_queue_structures: what a candidate queue structure costs redis-server per job, for the
// whole life of a no-op job (enqueue, fetch, ack, cleanup). Issue 4 chooses forq's protocol by
// these figures (docs/adr/0006-queue-structures.md). Not forq's protocol: candidates only.
//
//   streams: XADD entry; XREADGROUP COUNT batch; script XACK + XDEL + INCRBY per batch
//   lists:   script HSETNX/HSET/LPUSH; script RPOP count + ZADD lease; HGETALL per job;
//            script ZREM + DEL + INCRBY per batch
//
// Prints, per phase: redis-server CPU µs per job (INFO cpu), commands per job and the server's
// own µs inside commands per job (INFO commandstats), and requests (round trips) per job.
#include "forq/redis/connection.hpp"
#include "log.hpp"
#include "queue_structures_lua.hpp"
#include "redis/script.hpp"
#include "redis_figures.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
using namespace forq::redis;

using forq::bench::report;
using forq::bench::snapshot;

// Waits until every coroutine of a phase has counted itself out.
asio::awaitable<void> all_finished(const long& running) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (running > 0) {
    t.expires_after(std::chrono::milliseconds(1));
    co_await t.async_wait(asio::use_awaitable);
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string url, structure = "streams";
  long jobs = 100000, batch = 64, payload_bytes = 100, consumers = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url")
      url = v;
    else if (k == "--structure")
      structure = v;
    else if (k == "--jobs")
      jobs = std::stol(v);
    else if (k == "--batch")
      batch = std::stol(v);
    else if (k == "--payload-bytes")
      payload_bytes = std::stol(v);
    else if (k == "--consumers")
      consumers = std::stol(v);
  }
  const bool streams = structure.starts_with("streams");
  const bool trimmed = structure == "streams-trim" || structure == "streams-bulk-trim";
  const bool bulk = structure == "streams-bulk-trim";
  if (url.empty() || (structure != "streams" && structure != "lists" && !trimmed)) {
    std::fprintf(stderr, "usage: forq_queue_structures --url URL --structure "
                         "streams|streams-trim|streams-bulk-trim|lists "
                         "[--jobs N] [--batch B] [--consumers C] [--payload-bytes P]\n");
    return 2;
  }
  forq::init_logging(forq::log_format::text, forq::log_level::warn, "bench");

  asio::io_context ioc(1);
  connection_options o;
  o.endpoint = forq::parse_redis_url(url).value();
  o.client_name = client_name("bench");
  connection conn(ioc.get_executor(), o);
  asio::co_spawn(ioc, conn.run(), asio::detached);

  const script streams_ack("streams_ack", forq::bench::lua::streams_ack_lua);
  const script lists_enqueue("lists_enqueue", forq::bench::lua::lists_enqueue_lua);
  const script lists_fetch("lists_fetch", forq::bench::lua::lists_fetch_lua);
  const script lists_ack("lists_ack", forq::bench::lua::lists_ack_lua);
  const script streams_ack_trim("streams_ack_trim", forq::bench::lua::streams_ack_trim_lua);
  const script streams_enqueue_bulk("streams_enqueue_bulk",
                                    forq::bench::lua::streams_enqueue_bulk_lua);
  const std::string q = "forq:{bench" + std::to_string(::getpid()) + "}";
  const std::string stream = q + ":stream", ready = q + ":ready", leases = q + ":leases",
                    completed = q + ":completed";
  const std::string payload =
      "{\"data\":\"" + std::string(std::size_t(payload_bytes - 11), 'x') + "\"}";
  int exit_code = 0;

  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        if (streams)
          co_await conn.exec(request("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM"));
        // Scripts loaded before measuring: a one-off cost, not per job.
        request load;
        for (const script* s : std::array{&streams_ack, &lists_enqueue, &lists_fetch, &lists_ack,
                                          &streams_ack_trim, &streams_enqueue_bulk})
          load.push("SCRIPT", "LOAD", s->source());
        co_await conn.exec(load);

        auto before = co_await snapshot(conn);
        // Enqueue: one request per job, as producers do, 64 at a time on the pipeline.
        long next = 0, requests = 0, running = 64;
        for (int p = 0; p < 64; ++p)
          asio::co_spawn(
              ex,
              [&]() -> asio::awaitable<void> {
                while (next < jobs) {
                  if (bulk) { // 64 jobs per call, as a bulk producer sends them
                    std::vector<std::string> ids;
                    for (int i = 0; i < 64 && next < jobs; ++i)
                      ids.push_back(std::to_string(next++));
                    std::vector<std::string_view> k, a;
                    k.push_back(stream);
                    for (const auto& id : ids) {
                      a.push_back(id);
                      a.push_back("noop");
                      a.push_back(payload);
                    }
                    ++requests;
                    co_await eval(conn, streams_enqueue_bulk, k, a);
                    continue;
                  }
                  auto id = std::to_string(next++);
                  ++requests;
                  if (streams) {
                    co_await conn.exec(request("XADD", stream, "*", "id", id, "handler", "noop",
                                               "payload", payload));
                  } else {
                    // No braced lists in coroutines (GCC 12): push_back.
                    std::string job_key = q + ":job:" + id;
                    std::vector<std::string_view> k, a;
                    k.push_back(job_key);
                    k.push_back(ready);
                    a.push_back(id);
                    a.push_back("noop");
                    a.push_back(payload);
                    co_await eval(conn, lists_enqueue, k, a);
                  }
                }
                --running;
              },
              asio::detached);
        co_await all_finished(running);
        auto enqueued = co_await snapshot(conn);
        report("enqueue", before, enqueued, double(jobs), double(requests));

        // Drain: consumers fetch a batch, then acknowledge it in one request.
        long done = 0, drain_requests = 0;
        running = consumers;
        for (long c = 0; c < consumers; ++c)
          asio::co_spawn(
              ex,
              [&, c]() -> asio::awaitable<void> {
                auto name = "consumer-" + std::to_string(c);
                for (;;) {
                  std::vector<std::string> ids;
                  if (streams) {
                    ++drain_requests;
                    auto r =
                        co_await conn.exec(request("XREADGROUP", "GROUP", "workers", name, "COUNT",
                                                   std::to_string(batch), "STREAMS", stream, ">"));
                    if (!r || r->front().is_nil()) break;
                    for (const auto& entry : r->front().elements()[0].elements()[1].elements())
                      ids.emplace_back(entry.elements()[0].str());
                    std::vector<std::string_view> k, a;
                    k.push_back(stream);
                    k.push_back(completed);
                    a.push_back("workers");
                    for (const auto& id : ids)
                      a.push_back(id);
                    ++drain_requests;
                    co_await eval(conn, trimmed ? streams_ack_trim : streams_ack, k, a);
                  } else {
                    ++drain_requests;
                    auto lease_until =
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count() +
                                       30000);
                    std::string batch_text = std::to_string(batch);
                    std::vector<std::string_view> fk, fa;
                    fk.push_back(ready);
                    fk.push_back(leases);
                    fa.push_back(batch_text);
                    fa.push_back(lease_until);
                    auto r = co_await eval(conn, lists_fetch, fk, fa);
                    if (!r || !r->is_array() || r->elements().empty()) break;
                    request reads;
                    for (const auto& e : r->elements()) {
                      ids.emplace_back(e.str());
                      reads.push("HGETALL", q + ":job:" + std::string(e.str()));
                    }
                    ++drain_requests;
                    co_await conn.exec(reads); // one round trip for the batch's job records
                    std::vector<std::string> key_storage;
                    key_storage.push_back(leases);
                    key_storage.push_back(completed);
                    for (const auto& id : ids)
                      key_storage.push_back(q + ":job:" + id);
                    std::vector<std::string_view> k(key_storage.begin(), key_storage.end());
                    std::vector<std::string_view> a(ids.begin(), ids.end());
                    ++drain_requests;
                    co_await eval(conn, lists_ack, k, a);
                  }
                  done += static_cast<long>(ids.size());
                }
                --running;
              },
              asio::detached);
        co_await all_finished(running);
        auto drained = co_await snapshot(conn);
        report("drain", enqueued, drained, double(jobs), double(drain_requests));
        report("total", before, drained, double(jobs), double(requests + drain_requests));
        if (done != jobs) {
          std::fprintf(stderr, "forq_queue_structures: %ld of %ld jobs drained\n", done, jobs);
          exit_code = 1;
        }
        co_await conn.exec(request("DEL", stream, ready, leases, completed));
        conn.stop();
      },
      asio::detached);
  ioc.run();
  return exit_code;
}
