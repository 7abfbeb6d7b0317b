#include "schedule/cron.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <date/date.h>
#include <date/tz.h>
#include <limits>
#include <vector>

namespace forq::schedule {
namespace {

using std::chrono::seconds;

struct field_rule {
  std::string_view name;
  int lo, hi;
  const std::array<std::string_view, 12>* names = nullptr; // by value, from `names_from`
  int names_from = 0;
};

constexpr std::array<std::string_view, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> day_names{"sun", "mon", "tue", "wed", "thu", "fri",
                                                     "sat", "",    "",    "",    "",    ""};

constexpr field_rule second_rule{"second", 0, 59};
constexpr field_rule minute_rule{"minute", 0, 59};
constexpr field_rule hour_rule{"hour", 0, 23};
constexpr field_rule dom_rule{"day of month", 1, 31};
constexpr field_rule month_rule{"month", 1, 12, &month_names, 1};
constexpr field_rule dow_rule{"day of week", 0, 7, &day_names, 0}; // 7: Sunday again

error refuse(std::string why) {
  return error(errc::invalid_value, std::move(why));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A value of the field: a number within it, or a name where the field has names.
expected<int> value_of(std::string_view v, const field_rule& f) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc{} && end == v.data() + v.size() && !v.empty()) {
    if (n < f.lo || n > f.hi)
      return refuse(std::string(f.name) + " " + std::string(v) + " is out of range (" +
                    std::to_string(f.lo) + " to " + std::to_string(f.hi) + ")");
    return n;
  }
  if (f.names) {
    auto l = lower(v);
    for (std::size_t i = 0; i < f.names->size(); ++i)
      if (!(*f.names)[i].empty() && l == (*f.names)[i]) return static_cast<int>(i) + f.names_from;
  }
  return refuse("\"" + std::string(v.substr(0, 20)) + "\" is not a " + std::string(f.name) +
                (f.names ? " (a number or a name)" : " (a number)"));
}

// One field: the set of its values (bit v: value v allowed), and whether an item of it is a bare
// `*` (or `?` in a day field).
struct field_values {
  std::bitset<64> values;
  bool star = false;
};

expected<field_values> read_field(std::string_view text, const field_rule& f, bool day_field) {
  field_values out;
  if (text.empty()) return refuse(std::string(f.name) + " is empty");
  while (true) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    if (item.empty()) return refuse(std::string(f.name) + " has an empty list item");
    int step = 1;
    const bool stepped = item.find('/') != std::string_view::npos;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      auto s = item.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || step < 1 ||
          step > f.hi - f.lo + 1)
        return refuse(std::string(f.name) + " step \"" + std::string(s.substr(0, 20)) +
                      "\" is not allowed (1 to " + std::to_string(f.hi - f.lo + 1) + ")");
      item = item.substr(0, slash);
    }
    int from = f.lo, to = f.hi;
    if (item == "*" || (day_field && item == "?")) {
      out.star = out.star || !stepped;
      if (f.hi == 7 && !stepped) to = 6; // every day once
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
      auto a = value_of(item.substr(0, dash), f);
      if (!a) return a.error();
      auto b = value_of(item.substr(dash + 1), f);
      if (!b) return b.error();
      // SAT-SUN: Sunday as the end of a range is 7 (as croniter reads it).
      if (f.hi == 7 && *b == 0 && *a > 0) b = 7;
      if (*a > *b)
        return refuse(std::string(f.name) + " range " + std::string(item) +
                      " runs backwards (write the smaller value first)");
      from = *a, to = *b;
    } else {
      auto a = value_of(item, f);
      if (!a) return a.error();
      from = *a;
      to = stepped ? f.hi : *a; // "a/n": from a to the field's end
    }
    for (int v = from; v <= to; v += step)
      out.values.set(static_cast<std::size_t>(v));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

template <std::size_t N>
std::bitset<N> narrow(const std::bitset<64>& b, int shift = 0) {
  std::bitset<N> out;
  for (std::size_t i = 0; i < N; ++i)
    out[i] = b[i + static_cast<std::size_t>(shift)];
  return out;
}

std::string_view macro(std::string_view text) {
  auto l = lower(text);
  if (l == "@yearly" || l == "@annually") return "0 0 1 1 *";
  if (l == "@monthly") return "0 0 1 * *";
  if (l == "@weekly") return "0 0 * * 0";
  if (l == "@daily" || l == "@midnight") return "0 0 * * *";
  if (l == "@hourly") return "0 * * * *";
  return {};
}

// ---- the calendar search, in one clock's wall time (seconds since 1970 as if UTC) ----

struct civil {
  date::year_month_day ymd;
  int hour, minute, second;
  unsigned weekday; // 0 Sunday
};

civil civil_of(std::int64_t t) {
  auto day = date::floor<date::days>(date::sys_seconds(seconds(t)));
  auto rest = t - std::chrono::duration_cast<seconds>(day.time_since_epoch()).count();
  civil c{date::year_month_day(day), static_cast<int>(rest / 3600),
          static_cast<int>(rest / 60 % 60), static_cast<int>(rest % 60),
          date::weekday(day).c_encoding()};
  return c;
}

std::int64_t seconds_of(date::sys_days d) {
  return std::chrono::duration_cast<seconds>(d.time_since_epoch()).count();
}

bool day_matches(const cron& c, const civil& t) {
  const bool dom = c.days_of_month[static_cast<unsigned>(t.ymd.day())];
  const bool dow = c.days_of_week[t.weekday];
  if (c.any_day_of_month && c.any_day_of_week) return true;
  if (c.any_day_of_month) return dow;
  if (c.any_day_of_week) return dom;
  return dom || dow;
}

// The first wall time in [from, to) that `c` names.
std::optional<std::int64_t> first_match(const cron& c, std::int64_t from, std::int64_t to) {
  std::int64_t t = from;
  while (t < to) {
    const auto w = civil_of(t);
    const auto day_start = seconds_of(date::sys_days(w.ymd));
    if (!c.months[static_cast<unsigned>(w.ymd.month())]) {
      auto next = date::year_month{w.ymd.year(), w.ymd.month()} + date::months(1);
      t = seconds_of(date::sys_days(next / 1));
      continue;
    }
    if (!day_matches(c, w)) {
      t = day_start + 86400;
      continue;
    }
    if (!c.hours[static_cast<std::size_t>(w.hour)]) {
      t = day_start + (w.hour + 1) * 3600;
      continue;
    }
    if (!c.minutes[static_cast<std::size_t>(w.minute)]) {
      t = day_start + w.hour * 3600 + (w.minute + 1) * 60;
      continue;
    }
    int s = w.second;
    while (s < 60 && !c.seconds[static_cast<std::size_t>(s)])
      ++s;
    if (s == 60) {
      t = day_start + w.hour * 3600 + (w.minute + 1) * 60;
      continue;
    }
    t = day_start + w.hour * 3600 + w.minute * 60 + s;
    return t < to ? std::optional(t) : std::nullopt;
  }
  return std::nullopt;
}

constexpr std::int64_t five_years = 5LL * 366 * 86400;

} // namespace

expected<cron> parse_cron(std::string_view text) {
  cron c;
  c.text = std::string(text);
  std::string_view body = text;
  if (!text.empty() && text.front() == '@') {
    body = macro(text);
    if (body.empty())
      return refuse("\"" + std::string(text.substr(0, 20)) +
                    "\" is not a cron macro (@yearly, @annually, @monthly, @weekly, @daily, "
                    "@midnight, @hourly)");
  }
  std::vector<std::string_view> fields;
  for (std::size_t i = 0; i < body.size();) {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t'))
      ++i;
    auto j = i;
    while (j < body.size() && body[j] != ' ' && body[j] != '\t')
      ++j;
    if (j > i) fields.push_back(body.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5 && fields.size() != 6)
    return refuse("a cron expression has 5 fields (minute hour day-of-month month day-of-week) "
                  "or 6 (second first); \"" +
                  std::string(text.substr(0, 60)) + "\" has " + std::to_string(fields.size()));
  std::size_t k = 0;
  std::bitset<64> sec;
  if (fields.size() == 6) {
    auto s = read_field(fields[k++], second_rule, false);
    if (!s) return s.error();
    sec = s->values;
  } else {
    sec.set(0);
  }
  auto min = read_field(fields[k++], minute_rule, false);
  if (!min) return min.error();
  auto hour_text = fields[k];
  auto hr = read_field(fields[k++], hour_rule, false);
  if (!hr) return hr.error();
  auto dom = read_field(fields[k++], dom_rule, true);
  if (!dom) return dom.error();
  auto mon = read_field(fields[k++], month_rule, false);
  if (!mon) return mon.error();
  auto dow = read_field(fields[k++], dow_rule, true);
  if (!dow) return dow.error();
  auto week = dow->values;
  if (week[7]) week.set(0); // 7 is Sunday too
  c.seconds = narrow<60>(sec);
  c.minutes = narrow<60>(min->values);
  c.hours = narrow<24>(hr->values);
  c.days_of_month = narrow<32>(dom->values);
  c.months = narrow<13>(mon->values);
  c.days_of_week = narrow<7>(week);
  // As croniter reads them: a day field restricts nothing when an item of it is a bare `*`, or
  // when it allows every value of the field (`1-31`; `*/1` or `1-7` in day of week).
  c.any_day_of_month = dom->star || c.days_of_month.count() == 31;
  c.any_day_of_week = dow->star || c.days_of_week.count() == 7;
  c.any_hour = !hour_text.empty() && hour_text.front() == '*';
  // 30 February, 31 April...: refused now rather than never firing. Five years from a leap
  // year's start see every day a calendar has.
  const auto probe = seconds_of(date::sys_days(date::year(2024) / 1 / 1));
  if (!first_match(c, probe, probe + five_years))
    return refuse("\"" + std::string(text.substr(0, 60)) +
                  "\" names no day that exists (a day of month the months never have)");
  return c;
}

std::optional<sys_seconds> next_after(const cron& c, sys_seconds after,
                                      const date::time_zone* zone) {
  const std::int64_t start = after.time_since_epoch().count() + 1; // strictly after
  const std::int64_t give_up = start + five_years;
  if (!zone) {
    auto t = first_match(c, start, give_up);
    if (!t) return std::nullopt;
    return sys_seconds(seconds(*t));
  }
  // Segment by segment of one UTC offset: within one, wall time and real time move together.
  std::int64_t from = start;
  while (from < give_up) {
    const auto info = zone->get_info(date::sys_seconds(seconds(from)));
    const std::int64_t offset = info.offset.count();
    const std::int64_t end = std::min<std::int64_t>(give_up, info.end.time_since_epoch().count());
    // A wall time the previous segment also had (the clock went back): an expression with a set
    // hour fires only at its first occurrence, in the previous segment.
    auto repeated_until = std::numeric_limits<std::int64_t>::min(); // below: seen before
    if (const auto begin = info.begin.time_since_epoch().count();
        !c.any_hour && begin > -five_years * 100) { // (the zone's first segment has no before)
      const auto before = zone->get_info(date::sys_seconds(seconds(begin - 1)));
      if (before.offset.count() > offset) repeated_until = begin + before.offset.count();
    }
    std::int64_t wall = from + offset;
    while (auto w = first_match(c, wall, end + offset)) {
      if (*w < repeated_until) {
        wall = *w + 1;
        continue;
      }
      return sys_seconds(seconds(*w - offset));
    }
    if (end >= give_up) break;
    // The clock jumps forward at `end`: an expression with a set hour that names a wall time in
    // the skipped stretch fires at the first instant after it, the jump itself.
    const auto next = zone->get_info(date::sys_seconds(seconds(end)));
    if (!c.any_hour && next.offset.count() > offset &&
        first_match(c, end + offset, end + next.offset.count()))
      return sys_seconds(seconds(end));
    from = end;
  }
  return std::nullopt;
}

expected<const date::time_zone*> find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return refuse("time zone \"" + std::string(name.substr(0, 60)) +
                  "\" is not known (an IANA name such as UTC, Europe/London, America/New_York)");
  }
}

} // namespace forq::schedule
