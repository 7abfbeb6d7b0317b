// forq schedule add | list | remove (docs/schedules.md).
#include "cli/ops.hpp"
#include "exit_codes.hpp"
#include "forq/client.hpp"
#include "master/connect.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <date/date.h>
#include <tuple>

namespace forq::cli {

using master::fail;
using master::with_redis;
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

std::string show_time(std::optional<std::int64_t> ms) {
  if (!ms) return "-";
  return date::format(
      "%FT%TZ", date::floor<std::chrono::seconds>(
                    date::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(*ms))));
}

std::string show_every(std::chrono::milliseconds every) {
  const std::int64_t ms = every.count();
  for (auto [unit, size] :
       {std::pair{"d", 86400000LL}, {"h", 3600000LL}, {"m", 60000LL}, {"s", 1000LL}})
    if (ms % size == 0) return std::to_string(ms / size) + unit;
  return std::to_string(ms) + "ms";
}

// "2026-12-03T10:00:00Z" or with an offset ("+01:00"), as ms since the epoch.
std::optional<std::int64_t> parse_time(std::string_view text) {
  auto number = [&](std::size_t at, std::size_t len) -> std::optional<int> {
    int v = 0;
    if (at + len > text.size()) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + len, v);
    if (ec != std::errc{} || end != text.data() + at + len) return std::nullopt;
    return v;
  };
  // YYYY-MM-DDTHH:MM:SS, then Z or +HH:MM / -HH:MM
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  auto y = number(0, 4), mo = number(5, 2), d = number(8, 2), h = number(11, 2), mi = number(14, 2),
       sec = number(17, 2);
  if (!y || !mo || !d || !h || !mi || !sec || *h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  const date::year_month_day ymd{date::year(*y), date::month(static_cast<unsigned>(*mo)),
                                 date::day(static_cast<unsigned>(*d))};
  if (!ymd.ok()) return std::nullopt;
  int offset_min = 0;
  auto zone = text.substr(19);
  if (zone != "Z" && zone != "z") {
    auto oh = number(20, 2), om = number(23, 2);
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' || !oh || !om ||
        *oh > 23 || *om > 59)
      return std::nullopt;
    offset_min = (zone[0] == '-' ? -1 : 1) * (*oh * 60 + *om);
  }
  const auto t = date::sys_days(ymd) + std::chrono::hours(*h) + std::chrono::minutes(*mi) +
                 std::chrono::seconds(*sec) - std::chrono::minutes(offset_min);
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

} // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || n <= 0) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::int64_t size = 0;
  if (unit == "ms")
    size = 1;
  else if (unit == "s")
    size = 1000;
  else if (unit == "m")
    size = 60000;
  else if (unit == "h")
    size = 3600000;
  else if (unit == "d")
    size = 86400000;
  else
    return std::nullopt;
  if (n > 366LL * 86400000 / size) return std::nullopt;
  return std::chrono::milliseconds(n * size);
}

int schedule_add(const config& cfg, const schedule_args& a) {
  schedule::definition d;
  d.name = a.name;
  d.queue = a.queue;
  d.cron_text = a.cron;
  d.zone = a.tz;
  if (!a.every.empty()) {
    auto every = parse_duration(a.every);
    if (!every) {
      fail("--every \"" + a.every + "\" is not a duration: use 1s to 366d, e.g. 30s, 5m, 1h, 1d");
      return exit_code::fatal;
    }
    d.every = *every;
  }
  if (!a.tz.empty() && a.cron.empty()) {
    fail("--tz goes with --cron: an interval (--every) is counted in UTC");
    return exit_code::fatal;
  }
  // Each slot's job runs this handler: none (and no default for the queue here) or one no
  // worker has makes a dead job every slot.
  // The workers may be on other hosts with other settings: warned about, not refused.
  if (a.handler.empty() && a.default_handler.empty())
    std::fprintf(stderr,
                 "forq: warning: no --handler: each slot's job runs queue %s's default "
                 "handler (--queues %s=HANDLER on its workers); a worker without one "
                 "makes each slot's job dead\n",
                 a.queue.c_str(), a.queue.c_str());
  if (!a.handler.empty() && std::find(a.known_handlers.begin(), a.known_handlers.end(),
                                      a.handler) == a.known_handlers.end()) {
    std::string known;
    for (const auto& h : a.known_handlers)
      known += (known.empty() ? "" : ", ") + h;
    std::fprintf(stderr,
                 "forq: warning: handler \"%s\" is not one this forq runs (%s); the schedule is "
                 "added, but a worker without it makes each slot's job dead\n",
                 printable(a.handler).c_str(), known.c_str());
  }
  d.job.handler = a.handler;
  d.job.payload = a.payload.value_or("{}");
  d.job.priority = a.priority;
  if (a.attempts > 0) d.job.max_attempts = a.attempts;
  d.missed = schedule::missed_from(a.missed).value_or(schedule::missed_policy::latest);
  d.overlap = schedule::overlap_from(a.overlap).value_or(schedule::overlap_policy::allow);
  for (auto [text, at, flag] :
       {std::tuple{&a.start, &d.start_ms, "--start"}, std::tuple{&a.end, &d.end_ms, "--end"}}) {
    if (text->empty()) continue;
    *at = parse_time(*text);
    if (!*at) {
      fail(std::string(flag) + " \"" + *text +
           "\" is not a time: use RFC 3339, e.g. 2026-12-03T10:00:00Z or "
           "2026-12-03T11:00:00+01:00");
      return exit_code::fatal;
    }
  }
  if (a.limit > 0) d.limit = a.limit;
  if (!a.grace.empty()) {
    auto grace = parse_duration(a.grace);
    if (!grace) {
      fail("--grace \"" + a.grace + "\" is not a duration: use 1ms to 366d, e.g. 30s, 5m");
      return exit_code::fatal;
    }
    d.grace = *grace;
  }
  if (auto ok = schedule::check(d); !ok) {
    fail(ok.error().message());
    return exit_code::fatal;
  }
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    auto v = co_await schedule::upsert(conn, d);
    if (!v) {
      fail("Redis request failed: " + v.error().message());
      co_return exit_code::failure;
    }
    std::optional<std::int64_t> next;
    if (auto all = co_await schedule::list(conn, d.queue))
      for (const auto& s : *all)
        if (s.def.name == d.name) next = s.next_ms;
    std::printf("schedule %s of queue %s %s: version %lld, next run %s\n", d.name.c_str(),
                d.queue.c_str(), v->what.c_str(), static_cast<long long>(v->version),
                show_time(next).c_str());
    co_return exit_code::ok;
  });
}

int schedule_list(const config& cfg, const std::optional<std::string>& queue, bool as_json) {
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    // One queue's, or (no --queue) every queue's that has some, with a QUEUE column.
    std::vector<std::string> queues;
    if (queue) {
      queues.push_back(*queue);
    } else {
      client c(conn);
      auto names = co_await c.queues();
      if (!names) {
        fail("Redis request failed: " + names.error().message());
        co_return exit_code::failure;
      }
      queues = *names;
      std::sort(queues.begin(), queues.end());
    }
    std::vector<schedule::status> found;
    for (const auto& q : queues) {
      auto some = co_await schedule::list(conn, q);
      if (!some) {
        fail(some.error() == errc::invalid_value
                 ? some.error().message()
                 : "Redis request failed: " + some.error().message());
        co_return some.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
      }
      for (auto& s : *some)
        found.push_back(std::move(s));
    }
    if (as_json) {
      json::array out;
      for (const auto& s : found)
        out.push_back(s.to_json());
      std::printf("%s\n", serialize_utf8(out).c_str());
      co_return exit_code::ok;
    }
    if (found.empty()) {
      if (queue)
        std::printf("queue %s has no schedules\n", queue->c_str());
      else
        std::printf("no queue has schedules\n");
      co_return exit_code::ok;
    }
    if (!queue) std::printf("%-24s ", "QUEUE");
    std::printf("%-24s %-28s %-7s %-21s %-21s %6s %7s  %s\n", "NAME", "WHEN", "STATE", "NEXT (UTC)",
                "LAST (UTC)", "RUNS", "SKIPPED", "LAST JOB");
    for (const auto& s : found) {
      if (!queue) std::printf("%-24s ", s.def.queue.c_str());
      if (!s.unreadable.empty()) {
        std::printf("%-24s unreadable here: %s\n", s.def.name.c_str(), s.unreadable.c_str());
        continue;
      }
      auto when = s.def.cron_text.empty()
                      ? "every " + show_every(s.def.every)
                      : s.def.cron_text + (s.def.zone.empty() ? "" : " " + s.def.zone);
      std::printf("%-24s %-28s %-7s %-21s %-21s %6lld %7lld  %s\n", s.def.name.c_str(),
                  when.c_str(), s.state().c_str(), show_time(s.next_ms).c_str(),
                  show_time(s.last_ms).c_str(), static_cast<long long>(s.runs),
                  static_cast<long long>(s.skipped), s.last_id.empty() ? "-" : s.last_id.c_str());
    }
    co_return exit_code::ok;
  });
}

int schedule_act(const config& cfg, const std::string& action, const std::string& queue,
                 const std::string& name) {
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    expected<bool> done = false;
    std::string said = action == "remove" ? "removed" : action + "d";
    if (action == "remove") {
      done = co_await schedule::remove(conn, queue, name);
    } else if (action == "pause") {
      done = co_await schedule::pause(conn, queue, name);
    } else if (action == "resume") {
      done = co_await schedule::resume(conn, queue, name);
    } else {
      auto id = co_await schedule::run_now(conn, queue, name);
      if (id) {
        done = id->has_value();
        said = "run now: job " + id->value_or("");
      } else {
        done = id.error();
      }
    }
    if (!done) {
      fail(done.error() == errc::invalid_value ? done.error().message()
                                               : "Redis request failed: " + done.error().message());
      co_return done.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
    }
    if (!*done) {
      fail("queue " + queue + " has no schedule \"" + name + "\" (forq schedule list --queue " +
           queue + ")");
      co_return exit_code::failure;
    }
    std::printf("schedule %s of queue %s %s\n", name.c_str(), queue.c_str(), said.c_str());
    co_return exit_code::ok;
  });
}

} // namespace forq::cli
