#include "queue/job.hpp"

#include "backoff.hpp"
#include "forq/queue/producer.hpp"
#include "json_events.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>

namespace forq::queue {

namespace {

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string hex(std::string_view s) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

} // namespace

std::string first_attempt_id(std::string_view entry_id, int priority) {
  std::string id(entry_id);
  if (priority > 0) id += "-p" + std::to_string(priority);
  return id;
}

std::optional<std::pair<std::string, int>> entry_of(std::string_view job_id) {
  int priority = 0;
  auto dash = job_id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto rest = job_id.substr(dash + 1);
  if (auto p = rest.find("-p"); p != std::string_view::npos) {
    auto n = rest.substr(p + 2);
    if (n.size() != 1 || n[0] < '1' || n[0] > '9') return std::nullopt;
    priority = n[0] - '0';
    rest = rest.substr(0, p);
  }
  if (!all_digits(job_id.substr(0, dash)) || !all_digits(rest)) return std::nullopt;
  return std::make_pair(std::string(job_id.substr(0, dash + 1 + rest.size())), priority);
}

bool looks_generated(std::string_view id) {
  if (entry_of(id)) return true;
  auto d = id.find("-d");
  return d != std::string_view::npos && all_digits(id.substr(0, d)) && all_digits(id.substr(d + 2));
}

refusal_spell::step refusal_spell::refused(std::string_view queue, std::string_view reason) {
  ++refusals_;
  const backoff_policy waits{std::chrono::milliseconds(100), std::chrono::milliseconds(1000)};
  step s{{}, backoff_wait(waits, refusals_)};
  if (!active_)
    s.log = "queue " + std::string(queue) + ": Redis refuses writes (" + to_utf8(reason) +
            "); leased jobs stay pending and nothing is lost; retrying with backoff until it "
            "accepts them";
  active_ = true;
  return s;
}

std::string refusal_spell::accepted(std::string_view queue) {
  std::string line;
  if (active_)
    line = "queue " + std::string(queue) + ": Redis accepts writes again (after " +
           std::to_string(refusals_) + (refusals_ == 1 ? " refusal)" : " refusals)");
  active_ = false;
  refusals_ = 0;
  return line;
}

boost::system::error_code check_json(std::string_view text) {
  boost::json::basic_parser<forq::detail::json_events> p{boost::json::parse_options()};
  boost::system::error_code ec;
  auto used = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  return ec;
}

std::variant<delivered_job, std::string> parse_entry(std::string_view queue,
                                                     std::string_view stream, int priority,
                                                     const redis::reply& entry) {
  if (!entry.is_array() || entry.elements().size() != 2 || !entry.elements()[1].is_array())
    return std::string("not a stream entry: ") + entry.to_string();
  delivered_job j;
  j.queue = queue;
  j.stream = stream;
  j.priority = priority;
  j.entry_id = entry.elements()[0].str();
  const auto& kv = entry.elements()[1].elements();
  if (kv.size() % 2 != 0) return std::string("odd number of fields");
  bool has_payload = false;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
    std::string k(kv[i].str()), v(kv[i + 1].str());
    if (k == "id")
      j.id = v;
    else if (k == "handler")
      j.handler = v;
    else if (k == "payload") {
      j.payload = v;
      has_payload = true;
    } else if (k == "retry") {
      auto parsed = parse_retry(v);
      if (!parsed)
        return "field retry \"" + to_utf8(v.substr(0, 100)) + "\": " + parsed.error().message();
      j.retry = *parsed;
    } else if (k == "attempt" || k == "max_attempts") {
      auto n = to_int(v);
      if (!n || *n < 0)
        return "field " + k + " is not a whole number: \"" + to_utf8(v.substr(0, 64)) + "\"";
      if (k == "attempt")
        j.attempt = *n;
      else
        j.max_attempts = *n;
    } else if (k == "waitable") {
      j.waitable = v == "1";
    }
    j.fields.emplace_back(std::move(k), std::move(v));
  }
  // A first attempt: the job id is the entry id, marked with its priority (ids are unique per
  // stream only).
  if (j.id.empty()) j.id = first_attempt_id(j.entry_id, priority);
  // The producer's limits (check_job), for jobs written by anyone: a foreign producer may skip
  // them. Said without echoing the value, which may be huge.
  if (!is_utf8(j.id)) return std::string("id is not UTF-8 text");
  if (!std::all_of(j.handler.begin(), j.handler.end(), name_char))
    return "handler \"" + to_utf8(j.handler.substr(0, 128)) +
           "\" is not allowed: use 1 to 128 characters of A-Z a-z 0-9 _ . : -";
  if (j.max_attempts)
    if (auto ok = check_bounds(attempts_bounds, *j.max_attempts); !ok)
      return "max_attempts " + ok.error().message() + " (or leave it out for the queue's policy)";
  if (j.payload.size() > default_max_payload)
    return "payload is " + std::to_string(j.payload.size()) + " bytes; the limit is " +
           std::to_string(default_max_payload);
  if (j.id.size() > 256) return "id is " + std::to_string(j.id.size()) + " bytes; the limit is 256";
  if (j.handler.size() > 128)
    return "handler name is " + std::to_string(j.handler.size()) + " bytes; the limit is 128";
  if (!has_payload) return std::string("no payload field (every job needs one: JSON text)");
  if (auto ec = check_json(j.payload)) return "payload is not JSON: " + ec.message();
  return j;
}

std::string to_json(const delivered_job& j, int attempt,
                    const std::vector<std::pair<std::string, std::string>>& extra) {
  boost::json::object o;
  boost::json::array raw; // fields that are not UTF-8, exactly as they came
  for (const auto& [k, v] : j.fields) {
    if (is_utf8(k) && is_utf8(v)) {
      o[k] = v;
      continue;
    }
    auto shown = to_utf8(k);
    o[shown] = to_utf8(v);
    boost::json::array one;
    one.emplace_back(shown);
    one.emplace_back(hex(k));
    one.emplace_back(hex(v));
    raw.emplace_back(std::move(one));
  }
  o["id"] = to_utf8(j.id);
  o["attempt"] = std::to_string(attempt);
  o["priority"] = std::to_string(j.priority);
  for (const auto& [k, v] : extra)
    o[k] = to_utf8(v);
  if (!raw.empty()) o["raw_hex"] = std::move(raw);
  return boost::json::serialize(o);
}

std::string with_error(const delivered_job& j, int attempt, std::string_view error,
                       std::int64_t at_ms) {
  boost::json::array list;
  for (const auto& [k, v] : j.fields) {
    if (k != "errors") continue;
    boost::system::error_code ec;
    auto old = boost::json::parse(v, ec);
    if (ec || !old.is_array()) continue;
    for (auto& e : old.as_array()) // forq's own entries; whatever else a producer put there goes
      if (e.is_object()) list.push_back(std::move(e));
  }
  boost::json::object e;
  e["attempt"] = attempt;
  e["at_ms"] = at_ms;
  e["error"] = to_utf8(error.substr(0, error_bytes_kept));
  list.emplace_back(std::move(e));
  if (list.size() > errors_kept)
    list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(list.size() - errors_kept));
  return boost::json::serialize(list);
}

expected<> check_progress(std::string_view json) {
  if (json.size() > context::max_progress)
    return error(errc::invalid_value, "progress of " + std::to_string(json.size()) +
                                          " bytes is not allowed: at most " +
                                          std::to_string(context::max_progress));
  boost::system::error_code ec;
  boost::json::parse(json, ec);
  if (ec) return error(errc::invalid_value, "progress must be JSON text: " + ec.message());
  return {};
}

std::string cancel_words(std::string_view mark) {
  std::string by = "unknown", why;
  boost::system::error_code ec;
  auto v = boost::json::parse(mark, ec);
  if (!ec && v.is_object()) {
    if (auto* b = v.as_object().if_contains("by"); b && b->is_string()) by = b->as_string();
    if (auto* r = v.as_object().if_contains("reason"); r && r->is_string()) why = r->as_string();
  }
  return "cancelled by " + by + (why.empty() ? std::string() : ": " + why);
}

std::string handoff_json(const delivered_job& j, std::int64_t deadline_ms) {
  boost::json::object o; // (parse_entry let only UTF-8 through)
  o["id"] = j.id;
  o["queue"] = j.queue;
  o["handler"] = j.handler;
  o["attempt"] = j.attempt + 1;
  o["stalls"] = j.stalls;
  o["deadline_ms"] = deadline_ms;
  boost::system::error_code ec;
  auto payload = boost::json::parse(j.payload, ec);
  o["payload"] = ec ? boost::json::value(j.payload) : payload;
  return boost::json::serialize(o);
}

} // namespace forq::queue
