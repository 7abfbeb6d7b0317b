// The operators' commands: forq enqueue, queues, job, dead, pause, resume. Each connects to
// the configured Redis (--redis), or to the embedded one a running `forq serve` owns in the data
// directory, does its work through forq::client and exits: 0 done, 1 a runtime failure (Redis
// unreachable, job not found, a job refused), 2 bad usage (main.cpp).
#include "cli/ops.hpp"

#include "exit_codes.hpp"
#include "forq/client.hpp"
#include "forq/redis_url.hpp"
#include "master/connect.hpp"
#include "master/embedded_redis.hpp"
#include "queue/job.hpp"
#include "utf8.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace forq::cli {

using master::fail;
using master::with_redis;
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

// with_redis, with a client on its connection.
int with_client(const config& cfg, std::function<asio::awaitable<int>(client&)> body) {
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    client c(conn);
    co_return co_await body(c);
  });
}

std::string redis_error(const forq::error& e) {
  return "Redis request failed: " + e.message();
}

// The queues this Redis knows (forq:queues: a worker started on it, a producer enqueued to it,
// or an operator created it), said after a queue name that may be a typo: "; the queues are:
// a, b; did you mean \"a\"?". `known` says whether `queue` is among them.
asio::awaitable<std::string> queues_besides(client& c, const std::string& queue, bool& known) {
  known = true;
  auto all = co_await c.queues();
  if (!all) co_return std::string(); // the command itself will say what Redis said
  known = std::find(all->begin(), all->end(), queue) != all->end();
  std::string names;
  for (const auto& q : *all)
    if (q != queue) names += (names.empty() ? "" : ", ") + q;
  std::vector<std::string_view> candidates(all->begin(), all->end());
  std::erase(candidates, std::string_view(queue));
  auto best = closest(queue, candidates);
  co_return (names.empty() ? std::string("; there are no other queues")
                           : "; the queues are: " + names) +
      (best ? "; did you mean \"" + *best + "\"?" : std::string());
}

// Refuses a queue this Redis has never seen (most likely a typo; pause, resume and limit would
// set it up for nobody), unless `create` says it is meant. Nothing if it may go on.
asio::awaitable<std::optional<std::string>> check_known(client& c, const std::string& queue,
                                                        bool create) {
  if (create) co_return std::nullopt;
  bool known = true;
  auto others = co_await queues_besides(c, queue, known);
  if (known) co_return std::nullopt;
  co_return "queue \"" + queue + "\" is not known to this Redis" + others +
      "; give --create to set it up anyway (e.g. before its workers start)";
}

// Warns (on stderr; the job is still added: producers may start before workers) when no worker
// has started on `queue` yet.
asio::awaitable<void> warn_if_no_workers(client& c, const std::string& queue,
                                         std::string_view what) {
  auto has = co_await c.has_workers(queue);
  if (!has || *has) co_return;
  bool known = true;
  auto others = co_await queues_besides(c, queue, known);
  fail("warning: no worker has started on queue \"" + queue + "\" yet" + others + "; " +
       std::string(what) + " until one does");
}

// Milliseconds since the epoch as people read a time: 2026-12-02T06:30:07.123Z (UTC).
std::string iso_time(std::int64_t ms) {
  std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char date[32], frac[8];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(date) + frac;
}

// One job, PAYLOAD given: its id on stdout, or why not on stderr.
// One job as `forq job` prints it: text that came with the job escaped (it may hold terminal
// escapes or line breaks), or the one JSON shape.
void print_job(const job_info& info, bool as_json) {
  if (as_json) {
    std::printf("%s\n", queue::serialize_utf8(info.to_json()).c_str());
    return;
  }
  auto show = [](const std::string& s) { return printable(s); };
  std::printf("id:          %s\nqueue:       %s\nstate:       %s\nattempts:    %d\n",
              show(info.id).c_str(), info.queue.c_str(), info.state.c_str(), info.attempts);
  if (!info.handler.empty()) std::printf("handler:     %s\n", show(info.handler).c_str());
  if (!info.payload.empty()) std::printf("payload:     %s\n", show(info.payload).c_str());
  if (info.priority) std::printf("priority:    %d\n", *info.priority);
  if (info.max_attempts) std::printf("max attempts: %d\n", *info.max_attempts);
  if (info.retry) std::printf("retry:       %s\n", show(*info.retry).c_str());
  if (info.waitable) std::printf("waitable:    yes\n");
  if (info.result) std::printf("result:      %s\n", show(*info.result).c_str());
  if (info.last_error) std::printf("last error:  %s\n", show(*info.last_error).c_str());
  if (info.reason) std::printf("reason:      %s\n", show(*info.reason).c_str());
  if (info.progress) std::printf("progress:    %s\n", show(*info.progress).c_str());
  if (info.cancel_requested) std::printf("cancel:      asked for, not yet heard by its worker\n");
  if (info.cancelled_by)
    std::printf("cancelled by: %s%s\n", show(*info.cancelled_by).c_str(),
                info.cancel_reason && !info.cancel_reason->empty()
                    ? (" (" + show(*info.cancel_reason) + ")").c_str()
                    : "");
  // Times as people read them; --json keeps the milliseconds.
  if (info.run_at_ms) std::printf("runs at:     %s\n", iso_time(*info.run_at_ms).c_str());
  if (info.finished_ms) std::printf("finished at: %s\n", iso_time(*info.finished_ms).c_str());
}

std::chrono::milliseconds wait_span(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// What a wait's end prints and exits with: `show` for a completed job (exit 0); the reason on
// stderr for a dead or cancelled one (1), or for one still going when the wait ended (124).
int waited(const expected<std::optional<job_info>>& done, const std::string& queue,
           const std::string& id, double seconds,
           const std::function<void(const job_info&)>& show) {
  if (!done) {
    fail(redis_error(done.error()));
    return exit_code::failure;
  }
  if (!*done) {
    fail("no job " + printable(id) + " in queue " + queue +
         " (never enqueued, or finished and its record evicted)");
    return exit_code::failure;
  }
  const auto& info = **done;
  if (info.state == "completed") {
    show(info);
    return exit_code::ok;
  }
  if (info.state == "dead") {
    show(info);
    fail("job " + printable(id) + " is dead: " + printable(info.reason.value_or("")));
    return exit_code::failure;
  }
  if (info.state == "cancelled") {
    show(info);
    fail("job " + printable(id) + " was cancelled by " +
         printable(info.cancelled_by.value_or("?")) +
         (info.cancel_reason && !info.cancel_reason->empty() ? ": " + printable(*info.cancel_reason)
                                                             : std::string()));
    return exit_code::failure;
  }
  std::fprintf(stderr, "forq: job %s is still %s after %g s of waiting\n", printable(id).c_str(),
               info.state.c_str(), seconds);
  return exit_code::wait_timeout;
}

int enqueue_one(const config& cfg, const enqueue_args& a, const queue::new_job& j) {
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    // Producers may enqueue before any worker starts: a warning, not a refusal.
    co_await warn_if_no_workers(c, a.queue, "the job waits");
    auto r = co_await c.enqueue(a.queue, j);
    if (!r) {
      const auto& e = r.error();
      if (e == errc::redis_refuses_writes)
        fail("Redis refuses writes: " + e.message() + "; nothing was added");
      else if (e == errc::redis_not_confirmed)
        fail("not confirmed: " + e.message());
      else
        fail(e == errc::invalid_job ? e.message() : redis_error(e));
      co_return exit_code::failure;
    }
    if (a.wait_s) {
      // The result on stdout, what went wrong on stderr; a duplicate waits for the first.
      // The id on stderr (stdout gets the result): what `forq cancel` or `forq job` take.
      std::fprintf(stderr, "forq: job %s %s; waiting up to %g s for its end\n",
                   printable(r->id).c_str(),
                   r->duplicate ? "was enqueued before (nothing added)" : "enqueued", *a.wait_s);
      auto done = co_await c.wait(a.queue, r->id, wait_span(*a.wait_s));
      co_return waited(done, a.queue, r->id, *a.wait_s, [](const job_info& info) {
        std::printf("%s\n", info.result ? printable(*info.result).c_str() : "null");
      });
    }
    if (r->duplicate) {
      std::printf("%s\tduplicate\n", printable(r->id).c_str());
      std::fprintf(stderr, "forq: job %s was enqueued before; nothing was added\n",
                   printable(r->id).c_str());
    } else {
      std::printf("%s\n", r->id.c_str());
    }
    co_return exit_code::ok;
  });
}

// NDJSON on stdin: one payload per line, in bulk; each refused line is named, the rest go in.
int enqueue_lines(const config& cfg, const enqueue_args& a, const queue::new_job& proto) {
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    co_await warn_if_no_workers(c, a.queue, "the jobs wait");
    int code = exit_code::ok;
    std::size_t line_no = 0;
    std::string line;
    bool more = true;
    while (more) {
      std::vector<queue::new_job> jobs;
      std::vector<std::size_t> lines;
      // 1,000 lines a round trip, and their ids printed before the next: if Redis fails, what
      // was added is on stdout and what is unknown is named.
      while (jobs.size() < 1000 && (more = static_cast<bool>(std::getline(std::cin, line)))) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = proto;
        j.payload = line;
        jobs.push_back(std::move(j));
        lines.push_back(line_no);
      }
      if (jobs.empty()) break;
      auto r = co_await c.enqueue_many(a.queue, jobs);
      if (!r) {
        fail(redis_error(r.error()) + "; lines " + std::to_string(lines.front()) + " to " +
             std::to_string(lines.back()) +
             " may or may not have been enqueued; the ids printed above were");
        co_return exit_code::failure;
      }
      for (std::size_t i = 0; i < r->size(); ++i) {
        const auto& o = (*r)[i];
        if (!o.unconfirmed.empty()) {
          if (o.added) std::printf("%s\n", o.added->id.c_str());
          std::fprintf(stderr, "forq: line %zu not confirmed: %s\n", lines[i],
                       o.unconfirmed.c_str());
          code = exit_code::failure;
        } else if (o.added) {
          std::printf("%s\n", o.added->id.c_str());
        } else {
          std::fprintf(stderr, "forq: line %zu refused: %s\n", lines[i],
                       printable(o.refused).c_str());
          code = exit_code::failure;
        }
      }
      std::fflush(stdout);
    }
    std::fflush(stdout);
    co_return code;
  });
}

} // namespace

int enqueue(const config& cfg, const enqueue_args& a) {
  queue::new_job proto;
  proto.handler = a.handler;
  proto.priority = a.priority;
  if (a.attempts) proto.max_attempts = a.attempts;
  if (a.retry) {
    auto parsed = queue::parse_retry(*a.retry); // (the option's check has refused bad text)
    if (parsed) proto.retry = *parsed;
  }
  if (a.delay_ms > 0) proto.run_at_ms = queue::epoch_ms() + a.delay_ms;
  proto.waitable = a.waitable || a.wait_s.has_value();
  if (a.wait_s && !a.payload) {
    fail("--wait waits for one job: give its PAYLOAD_JSON (jobs read from stdin can be "
         "--waitable, and waited for with forq job ID --wait)");
    return exit_code::fatal;
  }
  // Refuse what can be refused before touching Redis.
  if (auto ok = queue::check_queue_name(a.queue); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  if (a.payload) {
    auto j = proto;
    j.payload = *a.payload;
    if (a.id) j.id = *a.id;
    if (auto ok = queue::check_job(j); !ok) {
      fail(ok.error().message());
      return exit_code::fatal;
    }
    return enqueue_one(cfg, a, j);
  }
  if (a.id) {
    fail("--id needs a PAYLOAD argument: ids of jobs read from stdin are generated");
    return exit_code::fatal;
  }
  return enqueue_lines(cfg, a, proto);
}

int queues(const config& cfg, bool as_json) {
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    auto names = co_await c.queues();
    if (!names) {
      fail(redis_error(names.error()));
      co_return exit_code::failure;
    }
    json::array all;
    if (!as_json)
      std::printf("%-24s %10s %10s %10s %10s %10s %12s %s\n", "QUEUE", "READY", "DELAYED", "ACTIVE",
                  "DEAD", "CANCELLED", "COMPLETED", "PAUSED");
    for (const auto& n : *names) {
      auto s = co_await c.stats(n);
      if (!s) {
        fail(redis_error(s.error()));
        co_return exit_code::failure;
      }
      if (as_json)
        all.push_back(s->to_json());
      else
        std::printf("%-24s %10lld %10lld %10lld %10lld %10lld %12lld %s\n", n.c_str(),
                    static_cast<long long>(s->ready), static_cast<long long>(s->delayed),
                    static_cast<long long>(s->active), static_cast<long long>(s->dead),
                    static_cast<long long>(s->cancelled), static_cast<long long>(s->completed),
                    s->paused ? "yes" : "no");
    }
    if (as_json) std::printf("%s\n", queue::serialize_utf8(all).c_str());
    co_return exit_code::ok;
  });
}

int job(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
        bool as_json, std::optional<double> wait_s) {
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    // One queue, or whichever knows the id (a few round trips however many queues there are).
    // (Each co_await a statement of its own: GCC 12 loses temporaries across one in an
    // expression.)
    expected<std::optional<job_info>> r = std::optional<job_info>();
    if (queue)
      r = co_await c.get_job(*queue, id);
    else
      r = co_await c.find_job(id);
    if (!r) {
      fail(redis_error(r.error()));
      co_return exit_code::failure;
    }
    if (*r && wait_s) {
      const auto in = (*r)->queue;
      auto done = co_await c.wait(in, id, wait_span(*wait_s));
      co_return waited(done, in, id, *wait_s,
                       [&](const job_info& info) { print_job(info, as_json); });
    }
    if (*r) {
      print_job(**r, as_json);
      co_return exit_code::ok;
    }
    fail("no job " + id + " in " + (queue ? "queue " + *queue : "any queue") +
         " (never enqueued, or finished and its record evicted)");
    co_return exit_code::failure;
  });
}

int cancel(const config& cfg, const std::string& id, const std::optional<std::string>& queue,
           const std::string& reason, bool as_json) {
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    std::string in;
    if (queue) {
      in = *queue;
    } else { // whichever queue knows the id
      auto r = co_await c.find_job(id);
      if (!r) {
        fail(redis_error(r.error()));
        co_return exit_code::failure;
      }
      if (*r) in = (*r)->queue;
    }
    expected<std::optional<client::cancel_result>> done = std::optional<client::cancel_result>();
    if (!in.empty()) done = co_await c.cancel(in, id, "cli", reason);
    if (!done) {
      fail(done.error() == errc::invalid_value ? done.error().message()
                                               : redis_error(done.error()));
      co_return done.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
    }
    if (!*done) {
      fail("no job " + printable(id) + " in " + (queue ? "queue " + *queue : "any queue") +
           " (never enqueued, or finished and its record evicted)");
      co_return exit_code::failure;
    }
    const auto& [outcome, info] = **done;
    if (as_json) {
      json::object o;
      o["outcome"] = outcome;
      o["job"] = info.to_json();
      std::printf("%s\n", queue::serialize_utf8(o).c_str());
    } else if (outcome == "cancelled") {
      std::printf("job %s cancelled: it will not run\n", printable(id).c_str());
    } else if (outcome == "requested" || outcome == "already_requested") {
      std::printf("job %s is running%s: told to stop (it ends cancelled within about a second, "
                  "unless it finishes first)\n",
                  printable(id).c_str(),
                  info.consumer ? (" on " + printable(*info.consumer)).c_str() : "");
    } else {
      std::fprintf(stderr, "forq: job %s has already ended (%s); nothing changed\n",
                   printable(id).c_str(), info.state.c_str());
    }
    co_return outcome == "terminal" ? exit_code::failure : exit_code::ok;
  });
}

int dead(const config& cfg, const dead_args& a) {
  if (auto ok = queue::check_queue_name(a.queue); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    if (a.action == "list") {
      auto r = co_await c.dead(a.queue, a.limit);
      if (!r) {
        fail(redis_error(r.error()));
        co_return exit_code::failure;
      }
      // The one shape of a job (job_info, as `forq job --json` prints it); in text, one line
      // each: id, when it died, why.
      json::array all;
      for (const auto& d : *r) {
        if (a.json) {
          all.push_back(d.to_json());
          continue;
        }
        std::printf("%s\t%s\t%s\n", printable(d.id).c_str(),
                    iso_time(d.finished_ms.value_or(0)).c_str(),
                    printable(d.reason.value_or("?")).c_str());
      }
      if (a.json) std::printf("%s\n", queue::serialize_utf8(all).c_str());
      // Nothing listed is an answer too (on stderr: stdout stays the list, empty).
      if (!a.json && r->empty())
        std::fprintf(stderr, "forq: no dead jobs in queue %s\n", a.queue.c_str());
      co_return exit_code::ok;
    }
    // (No co_await inside ?: : GCC 12 miscompiles it.)
    expected<std::size_t> r = std::size_t{0};
    if (a.action == "retry")
      r = co_await c.retry_dead(a.queue, a.ids);
    else
      r = co_await c.purge_dead(a.queue, a.ids);
    if (!r) {
      fail(redis_error(r.error()));
      co_return exit_code::failure;
    }
    std::printf("%s %zu dead job%s of queue %s\n", a.action == "retry" ? "retried" : "purged", *r,
                *r == 1 ? "" : "s", a.queue.c_str());
    if (!a.ids.empty() && *r < a.ids.size()) {
      fail(std::to_string(a.ids.size() - *r) + " of the given ids are not dead jobs of queue " +
           a.queue + (a.action == "retry" ? " (or their records cannot be read)" : ""));
      co_return exit_code::failure;
    }
    co_return exit_code::ok;
  });
}

int pause(const config& cfg, const std::string& queue, bool paused, bool create) {
  if (auto ok = queue::check_queue_name(queue); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    if (auto unknown = co_await check_known(c, queue, create)) {
      fail(*unknown);
      co_return exit_code::fatal;
    }
    auto done = paused ? co_await c.pause(queue) : co_await c.resume(queue);
    if (!done) {
      fail(redis_error(done.error()));
      co_return exit_code::failure;
    }
    std::printf("queue %s %s\n", queue.c_str(), paused ? "paused" : "resumed");
    co_return exit_code::ok;
  });
}

int rate_limit(const config& cfg, const std::string& queue, long long max, long long per_ms,
               bool create) {
  if (auto ok = queue::check_queue_name(queue); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    if (auto unknown = co_await check_known(c, queue, create)) {
      fail(*unknown);
      co_return exit_code::fatal;
    }
    std::optional<std::pair<std::int64_t, std::chrono::milliseconds>> limit;
    if (max > 0) limit.emplace(max, std::chrono::milliseconds(per_ms));
    auto done = co_await c.set_rate_limit(queue, limit);
    if (!done) {
      fail(done.error() == errc::invalid_value ? done.error().message()
                                               : redis_error(done.error()));
      co_return exit_code::failure;
    }
    if (limit)
      std::printf("queue %s: at most %lld jobs per %lld ms\n", queue.c_str(), max, per_ms);
    else
      std::printf("queue %s: no rate limit\n", queue.c_str());
    co_return exit_code::ok;
  });
}

} // namespace forq::cli

namespace forq::cli {

int events(const config& cfg, const events_args& a) {
  if (auto ok = queue::check_queue_name(a.queue); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  return with_client(cfg, [&](client& c) -> asio::awaitable<int> {
    if (a.on || a.off) { // turn them on or off
      if (auto unknown = co_await check_known(c, a.queue, a.create)) {
        fail(*unknown);
        co_return exit_code::fatal;
      }
      std::optional<std::int64_t> max;
      if (a.on) max = a.max;
      auto done = co_await c.set_events(a.queue, max);
      if (!done) {
        fail(done.error() == errc::invalid_value ? done.error().message()
                                                 : redis_error(done.error()));
        co_return done.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
      }
      if (max)
        std::printf("queue %s: events on (about %lld kept)\n", a.queue.c_str(),
                    static_cast<long long>(*max));
      else
        std::printf("queue %s: events off (the stream is deleted)\n", a.queue.c_str());
      co_return exit_code::ok;
    }
    // Text that came with a job is escaped: it may hold terminal escapes.
    auto print = [&](const queue_event& e) {
      if (a.json) {
        std::printf("%s\n", queue::serialize_utf8(e.to_json()).c_str());
      } else {
        std::int64_t ms = 0;
        std::from_chars(e.event_id.data(), e.event_id.data() + e.event_id.size(), ms);
        std::string line = iso_time(ms) + "  " + printable(e.event) + "  " + printable(e.job_id);
        for (const auto& [f, v] : e.fields)
          line += "  " + printable(f) + "=" + printable(v);
        std::printf("%s\n", line.c_str());
      }
      std::fflush(stdout);
    };
    auto stats = co_await c.stats(a.queue);
    if (stats && stats->events_max == 0)
      fail("warning: queue " + a.queue + "'s events are off (forq events " + a.queue +
           " --on turns them on)");
    // The last ones (the newest one's id, with --last 0: where following starts).
    auto last = co_await c.last_events(a.queue, std::max<std::size_t>(a.last, 1));
    if (!last) {
      fail(redis_error(last.error()));
      co_return exit_code::failure;
    }
    std::string after = last->empty() ? "0-0" : last->back().event_id;
    if (a.last > 0)
      for (const auto& e : *last)
        print(e);
    if (!a.follow) co_return exit_code::ok;
    // Follow: a blocking read at a time, up to a second each, until killed. Redis away: said
    // once, tried again every second.
    bool failing = false;
    for (;;) {
      auto more = co_await c.events(a.queue, after, 1000, 1s);
      if (!more) {
        if (!failing) fail(redis_error(more.error()) + "; trying again every second");
        failing = true;
        asio::steady_timer t(co_await asio::this_coro::executor, 1s);
        co_await t.async_wait(asio::use_awaitable);
        continue;
      }
      if (failing) fail("reading events again");
      failing = false;
      for (const auto& e : *more)
        print(e);
      if (!more->empty()) after = more->back().event_id;
    }
  });
}

} // namespace forq::cli
