#include "forq/queue/retry.hpp"

#include "backoff.hpp"
#include "forq/queue/limits.hpp"
#include "queue/verdict.hpp"
#include "utf8.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <variant>
#include <vector>

namespace forq::queue {

using std::chrono::milliseconds;

expected<> check_bounds(const bounds& b, long long value) {
  if (value >= b.lo && value <= b.hi) return {};
  return error(errc::invalid_value,
               std::to_string(value) + " is not allowed: use a whole number from " +
                   std::to_string(b.lo) + " to " + std::to_string(b.hi) + std::string(b.unit));
}

expected<> check_bounds(const bounds& b, std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc{} && end == text.data() + text.size() && !text.empty())
    return check_bounds(b, value);
  std::string shown(text.substr(0, 40));
  if (text.size() > 40) shown += "...";
  return error(errc::invalid_value,
               "\"" + to_utf8(shown) + "\" is not allowed: use a whole number from " +
                   std::to_string(b.lo) + " to " + std::to_string(b.hi) + std::string(b.unit));
}

namespace {

struct unit {
  std::string_view name;
  long long ms;
};
constexpr unit units[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}};

constexpr std::string_view tokens_allowed =
    "use attempts (a whole number from 1 to 1000), fixed or exponential, durations with a unit "
    "(ms, s, m, h, d; 1ms to 7d: the first is the base wait, the second or one written max=... "
    "the cap) and jitter or nojitter, separated by '/', e.g. 10/fixed/30s or "
    "exponential/2s/10m";

// "500ms", "1.5s", "2h": a duration, or nothing if `t` is not one (not an error yet: the caller
// says what the token is not).
std::optional<double> duration_ms(std::string_view t) {
  for (const auto& u : {unit{"ms", 1}, unit{"s", 1000}, unit{"m", 60'000}, unit{"h", 3'600'000},
                        unit{"d", 86'400'000}}) {
    if (!t.ends_with(u.name) || t.size() == u.name.size()) continue;
    auto number = t.substr(0, t.size() - u.name.size());
    if (number.back() < '0' || number.back() > '9') continue; // "5ms" must not read as "5m" + s
    double v = 0;
    auto [end, ec] =
        std::from_chars(number.data(), number.data() + number.size(), v, std::chars_format::fixed);
    if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(v)) continue;
    return v * static_cast<double>(u.ms);
  }
  return std::nullopt;
}

std::string show(milliseconds d) {
  if (d.count() <= 0) return std::to_string(d.count()) + "ms";
  for (const auto& u : units)
    if (d.count() % u.ms == 0) return std::to_string(d.count() / u.ms) + std::string(u.name);
  return std::to_string(d.count()) + "ms";
}

std::optional<std::string> check_wait(std::string_view what, milliseconds d) {
  if (d.count() >= backoff_bounds.lo && d.count() <= backoff_bounds.hi) return std::nullopt;
  return std::string(what) + " " + show(d) + " is not allowed: use 1ms to 7d";
}

} // namespace

namespace {

// parse_retry's reading, with the refusal as words (parse_retry makes them an error).
std::variant<retry_override, std::string> read_retry(std::string_view text) {
  retry_override r;
  if (text.empty()) return "empty; " + std::string(tokens_allowed);
  while (true) {
    auto slash = text.find('/');
    auto t = text.substr(0, slash);
    auto twice = [&](std::string_view what) { return std::string(what) + " is given twice"; };
    if (!t.empty() &&
        std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      if (r.attempts) return twice("the number of attempts");
      if (auto ok = check_bounds(attempts_bounds, t); !ok)
        return "attempts " + ok.error().message();
      r.attempts = std::stoi(std::string(t));
    } else if (t == "fixed" || t == "exponential") {
      if (r.exponential) return twice("fixed or exponential");
      r.exponential = t == "exponential";
    } else if (t == "jitter" || t == "nojitter") {
      if (r.jitter) return twice("jitter or nojitter");
      r.jitter = t == "jitter";
    } else if (auto ms = duration_ms(t.starts_with("max=") ? t.substr(4) : t)) {
      // A bare duration is the base wait, then the cap; "max=" names the cap alone.
      const bool cap = t.starts_with("max=") || r.base;
      if (cap && r.max) return twice("the cap");
      if (*ms < 1) return std::string(t) + " is under 1ms";
      if (*ms > static_cast<double>(backoff_bounds.hi)) // (before rounding: no overflow)
        return std::string(cap ? "the cap " : "the base wait ") + std::string(t) +
               " is not allowed: use 1ms to 7d";
      auto rounded = milliseconds(std::llround(*ms));
      if (auto bad = check_wait(cap ? "the cap" : "the base wait", rounded)) return *bad;
      (cap ? r.max : r.base) = rounded;
    } else {
      return "\"" + to_utf8(t.substr(0, 40)) +
             "\" is not a part of a retry policy: " + std::string(tokens_allowed);
    }
    if (slash == std::string_view::npos) break;
    text.remove_prefix(slash + 1);
  }
  if (r.base && r.max && *r.max < *r.base)
    return "the cap " + show(*r.max) + " is shorter than the base wait " + show(*r.base);
  return r;
}

} // namespace

expected<retry_override> parse_retry(std::string_view text) {
  auto r = read_retry(text);
  if (auto* why = std::get_if<std::string>(&r)) return error(errc::invalid_value, std::move(*why));
  return std::get<retry_override>(std::move(r));
}

expected<> check_retry(const retry_override& r) {
  auto refuse = [](std::string why) { return error(errc::invalid_value, std::move(why)); };
  if (r.attempts)
    if (auto ok = check_bounds(attempts_bounds, *r.attempts); !ok)
      return refuse("retry attempts " + ok.error().message());
  if (r.base)
    if (auto bad = check_wait("retry base wait", *r.base)) return refuse(*bad);
  if (r.max)
    if (auto bad = check_wait("retry cap", *r.max)) return refuse(*bad);
  if (r.base && r.max && *r.max < *r.base)
    return refuse("retry cap " + show(*r.max) + " is shorter than the base wait " + show(*r.base));
  return {};
}

std::string to_string(const retry_override& r) {
  std::vector<std::string> parts;
  if (r.attempts) parts.push_back(std::to_string(*r.attempts));
  if (r.exponential) parts.emplace_back(*r.exponential ? "exponential" : "fixed");
  if (r.base) parts.push_back(show(*r.base));
  if (r.max) parts.push_back((r.base ? "" : "max=") + show(*r.max)); // alone, it is named
  if (r.jitter) parts.emplace_back(*r.jitter ? "jitter" : "nojitter");
  std::string out;
  for (const auto& p : parts)
    out += (out.empty() ? "" : "/") + p;
  return out;
}

retry_policy apply(retry_policy below, const retry_override& r) {
  if (r.attempts) below.max_attempts = *r.attempts;
  if (r.exponential) below.exponential = *r.exponential;
  if (r.base) below.backoff = *r.base;
  if (r.max) below.max_backoff = *r.max;
  if (r.jitter) below.jitter = *r.jitter;
  return below;
}

std::string to_string(const retry_policy& p) {
  return std::to_string(p.max_attempts) + (p.exponential ? "/exponential/" : "/fixed/") +
         show(p.backoff) + "/" + show(p.max_backoff) +
         (p.jitter.value_or(p.exponential) ? "/jitter" : "/nojitter");
}

verdict decide(const retry_policy& p, int attempt_made, bool permanent, std::string_view error,
               std::optional<milliseconds> retry_after, std::mt19937_64& rng) {
  if (permanent) return {false, {}, std::string(error)};
  if (attempt_made >= p.max_attempts)
    return {false,
            {},
            "failed " + std::to_string(attempt_made) + (attempt_made == 1 ? " time" : " times") +
                "; last error: " + std::string(error)};
  if (retry_after) return {true, std::min(*retry_after, p.max_backoff), {}};
  // Jittered (half fixed, half random), retries of a burst spread out.
  const backoff_policy waits{p.backoff, p.max_backoff, p.exponential,
                             p.jitter.value_or(p.exponential)};
  return {true, backoff_wait(waits, attempt_made, rng()), {}};
}

} // namespace forq::queue
