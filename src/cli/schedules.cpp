// forq schedule add | list | remove (docs/schedules.md).
#include "cli/connect.hpp"
#include "cli/ops.hpp"
#include "exit_codes.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstdio>
#include <date/date.h>

namespace forq::cli {
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
  d.job.handler = a.handler;
  d.job.payload = a.payload.value_or("{}");
  d.job.priority = a.priority;
  if (a.attempts > 0) d.job.max_attempts = a.attempts;
  d.missed = a.missed == "skip"  ? schedule::missed_policy::skip
             : a.missed == "all" ? schedule::missed_policy::all
                                 : schedule::missed_policy::latest;
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
    std::printf("schedule %s of queue %s: version %lld, next run %s\n", d.name.c_str(),
                d.queue.c_str(), static_cast<long long>(*v), show_time(next).c_str());
    co_return exit_code::ok;
  });
}

int schedule_list(const config& cfg, const std::string& queue, bool as_json) {
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    auto all = co_await schedule::list(conn, queue);
    if (!all) {
      fail(all.error() == errc::invalid_value ? all.error().message()
                                              : "Redis request failed: " + all.error().message());
      co_return all.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
    }
    if (as_json) {
      json::array out;
      for (const auto& s : *all) {
        auto o = json::parse(schedule::to_json(s.def)).as_object();
        o["queue"] = s.def.queue;
        o["version"] = s.version;
        o["next_ms"] = s.next_ms ? json::value(*s.next_ms) : json::value(nullptr);
        o["last_ms"] = s.last_ms ? json::value(*s.last_ms) : json::value(nullptr);
        o["last_job_id"] = s.last_id;
        o["runs"] = s.runs;
        o["skipped"] = s.skipped;
        out.push_back(std::move(o));
      }
      std::printf("%s\n", serialize_utf8(out).c_str());
      co_return exit_code::ok;
    }
    if (all->empty()) {
      std::printf("queue %s has no schedules\n", queue.c_str());
      co_return exit_code::ok;
    }
    std::printf("%-24s %-28s %-21s %-21s %6s %7s  %s\n", "NAME", "WHEN", "NEXT (UTC)", "LAST (UTC)",
                "RUNS", "SKIPPED", "LAST JOB");
    for (const auto& s : *all) {
      auto when = s.def.cron_text.empty()
                      ? "every " + show_every(s.def.every)
                      : s.def.cron_text + (s.def.zone.empty() ? "" : " " + s.def.zone);
      std::printf("%-24s %-28s %-21s %-21s %6lld %7lld  %s\n", s.def.name.c_str(), when.c_str(),
                  show_time(s.next_ms).c_str(), show_time(s.last_ms).c_str(),
                  static_cast<long long>(s.runs), static_cast<long long>(s.skipped),
                  s.last_id.empty() ? "-" : s.last_id.c_str());
    }
    co_return exit_code::ok;
  });
}

int schedule_remove(const config& cfg, const std::string& queue, const std::string& name) {
  return with_redis(cfg, [&](redis::connection& conn) -> asio::awaitable<int> {
    auto removed = co_await schedule::remove(conn, queue, name);
    if (!removed) {
      fail(removed.error() == errc::invalid_value
               ? removed.error().message()
               : "Redis request failed: " + removed.error().message());
      co_return removed.error() == errc::invalid_value ? exit_code::fatal : exit_code::failure;
    }
    if (!*removed) {
      fail("queue " + queue + " has no schedule \"" + name + "\" (forq schedule list --queue " +
           queue + ")");
      co_return exit_code::failure;
    }
    std::printf("schedule %s of queue %s removed\n", name.c_str(), queue.c_str());
    co_return exit_code::ok;
  });
}

} // namespace forq::cli
