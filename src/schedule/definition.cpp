// A schedule's definition (docs/schedules.md): its policies, its JSON both ways, its checks, and
// its slots. Pure: no Redis.
#include "forq/names.hpp"
#include "schedule/detail.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <set>

namespace forq::schedule {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr std::int64_t year_ms = 366LL * 86400 * 1000;

error refuse(std::string why) {
  return error(errc::invalid_value, std::move(why));
}

} // namespace

std::string_view to_string(missed_policy m) {
  switch (m) {
  case missed_policy::skip:
    return "skip";
  case missed_policy::all:
    return "all";
  case missed_policy::latest:
    break;
  }
  return "latest";
}

std::string_view to_string(overlap_policy o) {
  switch (o) {
  case overlap_policy::skip:
    return "skip";
  case overlap_policy::queue_one:
    return "queue-one";
  case overlap_policy::allow:
    break;
  }
  return "allow";
}

std::optional<missed_policy> missed_from(std::string_view text) {
  for (auto m : {missed_policy::skip, missed_policy::latest, missed_policy::all})
    if (text == to_string(m)) return m;
  return std::nullopt;
}

std::optional<overlap_policy> overlap_from(std::string_view text) {
  for (auto o : {overlap_policy::allow, overlap_policy::skip, overlap_policy::queue_one})
    if (text == to_string(o)) return o;
  return std::nullopt;
}

std::string to_json(const definition& d) {
  json::object o;
  o["name"] = d.name;
  if (!d.cron_text.empty()) {
    o["cron"] = d.cron_text;
    if (!d.zone.empty()) o["tz"] = d.zone;
  } else {
    o["every_ms"] = d.every.count();
  }
  if (!d.job.handler.empty()) o["handler"] = d.job.handler;
  boost::system::error_code ec; // checked by check_job: JSON text
  auto payload = json::parse(d.job.payload, ec);
  o["payload"] = ec ? json::value(d.job.payload) : payload;
  if (d.job.priority != 0) o["priority"] = d.job.priority;
  if (d.job.max_attempts) o["max_attempts"] = *d.job.max_attempts;
  o["missed"] = to_string(d.missed);
  o["grace_ms"] = d.grace.count();
  if (d.overlap != overlap_policy::allow) o["overlap"] = to_string(d.overlap);
  if (d.start_ms) o["start_ms"] = *d.start_ms;
  if (d.end_ms) o["end_ms"] = *d.end_ms;
  if (d.limit) o["limit"] = *d.limit;
  if (d.from_config) o["source"] = "config";
  return serialize_utf8(o);
}

expected<definition> from_json(std::string_view text, std::string_view queue, bool strict) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return refuse("a schedule must be a JSON object");
  const auto& o = v.as_object();
  definition d;
  d.queue = queue;
  auto str = [&](std::string_view key) -> std::optional<std::string> {
    auto* x = o.if_contains(key);
    if (x && x->is_string()) return std::string(x->as_string());
    return std::nullopt;
  };
  auto num = [&](std::string_view key) -> std::optional<std::int64_t> {
    auto* x = o.if_contains(key);
    if (x && x->is_int64()) return x->as_int64();
    return std::nullopt;
  };
  d.name = str("name").value_or("");
  d.cron_text = str("cron").value_or("");
  d.zone = str("tz").value_or("");
  d.every = milliseconds(num("every_ms").value_or(0));
  d.job.handler = str("handler").value_or("");
  // Any JSON value; a string holding JSON text is that text (how `forq schedule add` and older
  // definitions give it), any other string is itself.
  if (auto* p = o.if_contains("payload")) {
    boost::system::error_code pec;
    if (p->is_string()) json::parse(p->as_string(), pec);
    d.job.payload = p->is_string() && !pec ? std::string(p->as_string()) : serialize_utf8(*p);
  } else {
    d.job.payload = "{}";
  }
  for (const char* key : {"priority", "max_attempts"})
    if (auto n = num(key); n && (*n < -1000000 || *n > 1000000))
      return refuse("schedule field \"" + std::string(key) + "\" " + std::to_string(*n) +
                    " is out of range");
  d.job.priority = static_cast<int>(num("priority").value_or(0));
  if (auto m = num("max_attempts")) d.job.max_attempts = static_cast<int>(*m);
  for (const auto& [key, value] : o) {
    static const std::set<std::string_view> known = {
        "name", "cron", "tz", "every_ms", "handler", "payload", "priority", "max_attempts",
        "missed", "grace_ms", "overlap", "start_ms", "end_ms", "limit", "source",
        // what `forq schedule list --json` adds, so its output can be given back as it is
        "queue", "version", "next_ms", "last_ms", "last_job_id", "runs", "skipped",
        "skipped_missed", "skipped_overlap", "state", "last_late_ms"};
    if (!known.contains(key)) {
      if (strict) return refuse("a schedule has no field \"" + std::string(key) + "\"");
      continue;
    }
    const bool text_field = key == "name" || key == "cron" || key == "tz" || key == "handler" ||
                            key == "missed" || key == "overlap" || key == "source";
    const bool number_field = key == "every_ms" || key == "priority" || key == "max_attempts" ||
                              key == "grace_ms" || key == "start_ms" || key == "end_ms" ||
                              key == "limit";
    if (text_field && !value.is_string())
      return refuse("schedule field \"" + std::string(key) + "\" must be a string");
    if (number_field && !value.is_int64())
      return refuse("schedule field \"" + std::string(key) + "\" must be a whole number");
  }
  auto missed = str("missed").value_or("latest");
  if (auto m = missed_from(missed))
    d.missed = *m;
  else
    return refuse("missed \"" + missed + "\" is not allowed: skip, latest or all");
  auto overlap = str("overlap").value_or("allow");
  if (auto o2 = overlap_from(overlap))
    d.overlap = *o2;
  else
    return refuse("overlap \"" + overlap + "\" is not allowed: allow, skip or queue-one");
  d.grace = milliseconds(num("grace_ms").value_or(60000));
  d.start_ms = num("start_ms");
  d.end_ms = num("end_ms");
  d.limit = num("limit");
  auto source = str("source").value_or("");
  if (!source.empty() && source != "config")
    return refuse("source \"" + source + "\" is not allowed: config, or none");
  d.from_config = source == "config";
  if (auto ok = check(d); !ok) return ok.error();
  return d;
}

expected<std::vector<definition>> from_json_list(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_array()) return refuse("expected a JSON array of schedules");
  std::vector<definition> out;
  std::set<std::pair<std::string, std::string>> seen;
  std::size_t i = 0;
  for (const auto& one : v.as_array()) {
    const auto where = "schedules[" + std::to_string(i++) + "]";
    if (!one.is_object()) return refuse(where + " must be a JSON object");
    std::string queue = "default";
    if (auto* q = one.as_object().if_contains("queue")) {
      if (!q->is_string()) return refuse(where + ": queue must be a string");
      queue = std::string(q->as_string());
    }
    auto d = from_json(json::serialize(one), queue, true);
    if (!d) return refuse(where + ": " + d.error().message());
    d->from_config = true;
    if (!seen.emplace(d->queue, d->name).second)
      return refuse(where + ": queue " + d->queue + " has a schedule \"" + d->name +
                    "\" already; names are unique in a queue");
    out.push_back(std::move(*d));
  }
  return out;
}

expected<> check(const definition& d) {
  if (auto ok = handlers::check_name(d.name); !ok)
    return refuse("schedule " + ok.error().message().substr(std::string("handler ").size()));
  if (auto ok = queue::check_queue_name(d.queue); !ok) return ok.error();
  if (d.cron_text.empty() == (d.every.count() == 0))
    return refuse("schedule \"" + d.name + "\" needs a cron expression or an interval, not " +
                  (d.cron_text.empty() ? "neither" : "both"));
  if (!d.cron_text.empty()) {
    auto c = parse_cron(d.cron_text);
    if (!c) return refuse("schedule \"" + d.name + "\": " + c.error().message());
    if (!d.zone.empty())
      if (auto z = find_zone(d.zone); !z)
        return refuse("schedule \"" + d.name + "\": " + z.error().message());
  } else if (d.every < std::chrono::seconds(1) || d.every.count() > year_ms) {
    return refuse("schedule \"" + d.name + "\": every " + std::to_string(d.every.count()) +
                  " ms is not allowed: use 1s to 366d");
  }
  if (d.job.id) return refuse("a schedule's job takes its id from the schedule and the slot");
  if (auto ok = queue::check_job(d.job); !ok)
    return refuse("schedule \"" + d.name + "\": " + ok.error().message());
  if (d.grace.count() < 0 || d.grace.count() > year_ms)
    return refuse("schedule \"" + d.name + "\": grace must be 0 to 366d");
  if (d.limit && *d.limit < 1)
    return refuse("schedule \"" + d.name + "\": limit " + std::to_string(*d.limit) +
                  " is not allowed: at least 1 run");
  if ((d.start_ms && *d.start_ms < 0) || (d.end_ms && *d.end_ms < 0))
    return refuse("schedule \"" + d.name + "\": start and end are times since 1970");
  if (d.start_ms && d.end_ms && *d.end_ms < *d.start_ms)
    return refuse("schedule \"" + d.name + "\": its end is before its start");
  return {};
}

std::optional<std::int64_t> next_slot(const definition& d, std::int64_t after_ms) {
  return slot_clock(d).next(after_ms);
}

std::string job_id(const definition& d, std::int64_t slot_ms) {
  return "schedule:" + d.name + ":" + std::to_string(slot_ms);
}

slot_clock::slot_clock(const definition& d)
    : every_(d.every.count())
    , start_(d.start_ms)
    , end_(d.end_ms) {
  if (every_ > 0) return;
  if (auto c = parse_cron(d.cron_text)) cron_ = std::move(*c);
  if (!d.zone.empty()) {
    auto z = find_zone(d.zone);
    if (z)
      zone_ = *z;
    else
      cron_.reset(); // checked at upsert: only a hand-written definition gets here
  }
}

std::optional<std::int64_t> slot_clock::next(std::int64_t after_ms) const {
  if (start_ && after_ms < *start_) after_ms = *start_ - 1;
  auto s = unbounded(after_ms);
  if (s && end_ && *s > *end_) return std::nullopt;
  return s;
}

std::optional<std::int64_t> slot_clock::unbounded(std::int64_t after_ms) const {
  if (every_ > 0) // aligned to the clock
    return (after_ms >= 0 ? after_ms / every_ + 1 : -((-after_ms) / every_)) * every_;
  if (!cron_) return std::nullopt;
  // Cron slots are whole seconds: strictly after `after_ms` means after its second.
  auto next = next_after(*cron_, sys_seconds(std::chrono::seconds(after_ms / 1000)), zone_);
  if (!next) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(next->time_since_epoch()).count();
}

} // namespace forq::schedule
