#include "config/lists.hpp"

#include "forq/names.hpp"
#include "json_text.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace forq::config_lists {

namespace json = boost::json;

std::optional<unsigned> parse_uint(std::string_view text, unsigned max) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value > max)
    return std::nullopt;
  return value;
}

std::optional<std::string> set_queues(config& c, std::string_view v) {
  std::vector<config::queue_choice> chosen;
  while (true) {
    auto comma = v.find(',');
    auto item = v.substr(0, comma);
    config::queue_choice q;
    // '@' (in no name) separates the retry policy, whose text has ':' and '='.
    if (auto at = item.find('@'); at != std::string_view::npos) {
      auto parsed = queue::parse_retry(item.substr(at + 1));
      if (!parsed)
        return "retry of queue \"" + std::string(item.substr(0, at)) +
               "\": " + parsed.error().message();
      q.retry = *parsed;
      item = item.substr(0, at);
    }
    // '=' (in no name) separates the default handler.
    if (auto eq = item.find('='); eq != std::string_view::npos) {
      q.default_handler = std::string(item.substr(eq + 1));
      item = item.substr(0, eq);
      if (auto ok = handlers::check_name(q.default_handler); !ok)
        return "default handler of queue \"" + std::string(item) + "\": " + ok.error().message();
    }
    // The last ':' separates a weight (queue names may contain ':').
    auto colon = item.rfind(':');
    if (colon != std::string_view::npos) {
      auto w = parse_uint(item.substr(colon + 1), 1000);
      if (!w || *w == 0)
        return "weight \"" + std::string(item.substr(colon + 1)) + "\" of queue \"" +
               std::string(item.substr(0, colon)) +
               "\" is not allowed: use a whole number from 1 to 1000";
      q.weight = *w;
      item = item.substr(0, colon);
    }
    if (auto ok = queue::check_queue_name(item); !ok) return ok.error().message();
    q.name = std::string(item);
    for (const auto& other : chosen)
      if (other.name == q.name) return "queue \"" + q.name + "\" is listed twice";
    chosen.push_back(std::move(q));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  c.queues = std::move(chosen);
  return std::nullopt;
}

std::string show_queues(const config& c) {
  std::string all;
  for (const auto& q : c.queues)
    all += (all.empty() ? "" : ",") + q.name +
           (q.weight == 1 ? "" : ":" + std::to_string(q.weight)) +
           (q.default_handler.empty() ? "" : "=" + q.default_handler) +
           (q.retry.empty() ? "" : "@" + queue::to_string(q.retry));
  return all;
}

std::optional<std::string> set_handlers(config& c, std::string_view v) {
  boost::system::error_code ec;
  auto parsed = json::parse(v.empty() ? std::string_view("{}") : v, ec);
  if (ec || !parsed.is_object()) return "expected a JSON object";
  if (auto twice = first_repeated_key(v)) return "\"" + twice->path + "\" is given twice; keep one";
  std::vector<config::handler_spec> specs;
  for (const auto& [name, body] : parsed.as_object()) {
    std::string n(name);
    if (auto ok = handlers::check_name(n); !ok) return ok.error().message();
    if (handlers::is_builtin(n)) return "\"" + n + "\" is a built-in handler";
    if (!body.is_object()) return "handler \"" + n + "\" must be an object";
    config::handler_spec h;
    h.name = n;
    for (const auto& [k, x] : body.as_object()) {
      if (k == "exec") {
        if (!x.is_array() || x.as_array().empty())
          return "handler \"" + n + "\": exec must be a non-empty array of strings";
        for (const auto& a : x.as_array()) {
          if (!a.is_string()) return "handler \"" + n + "\": exec must be an array of strings";
          h.exec.emplace_back(a.as_string());
        }
      } else if (k == "http") {
        if (!x.is_string()) return "handler \"" + n + "\": http must be a URL string";
        h.http = std::string(x.as_string());
        if (auto ok = handlers::check_http_url(h.http); !ok)
          return "handler \"" + n + "\": http " + ok.error().message();
      } else if (k == "timeout") {
        if (!x.is_number() || x.to_number<double>() < 0.001 || x.to_number<double>() > 86400)
          return "handler \"" + n + "\": timeout must be 0.001 to 86400 seconds";
        h.timeout = std::chrono::milliseconds(
            std::max<long long>(1, std::llround(x.to_number<double>() * 1000)));
      } else if (k == "retry_exit_code") {
        if (!x.is_int64() || x.as_int64() < 1 || x.as_int64() > 255)
          return "handler \"" + n + "\": retry_exit_code must be 1 to 255";
        h.retry_exit_code = static_cast<int>(x.as_int64());
      } else if (k == "fail_exit_code") {
        if (!x.is_int64() || x.as_int64() < 1 || x.as_int64() > 255)
          return "handler \"" + n + "\": fail_exit_code must be 1 to 255";
        h.fail_exit_code = static_cast<int>(x.as_int64());
      } else if (k == "max_output") {
        if (!x.is_int64() || x.as_int64() < 1 || x.as_int64() > (64 << 20))
          return "handler \"" + n + "\": max_output must be 1 to 67108864";
        h.max_output = static_cast<std::size_t>(x.as_int64());
      } else {
        return "handler \"" + n + "\": unknown setting \"" + std::string(k) +
               "\" (known: exec, http, timeout, retry_exit_code, fail_exit_code, max_output)";
      }
    }
    if (h.exec.empty() == h.http.empty())
      return "handler \"" + n +
             "\" needs one of \"exec\" (a command) or "
             "\"http\" (a URL)";
    for (std::string_view exit_code : {"retry_exit_code", "fail_exit_code"})
      if (!h.http.empty() && body.as_object().contains(exit_code))
        return "handler \"" + n + "\": " + std::string(exit_code) +
               " is for exec handlers (an http handler retries on 408, 429 and 5xx, and "
               "fails at once on any other status that is not 2xx)";
    if (h.retry_exit_code == h.fail_exit_code)
      return "handler \"" + n + "\": retry_exit_code and fail_exit_code must differ (both are " +
             std::to_string(h.fail_exit_code) + ")";
    specs.push_back(std::move(h));
  }
  c.handlers = std::move(specs);
  return std::nullopt;
}

std::optional<std::string> set_schedules(config& c, std::string_view v) {
  std::string text(v);
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) { // empty: not set
    c.schedules_json.clear();
    return std::nullopt;
  }
  if (text[first] != '[') { // a path
    std::ifstream in(text, std::ios::binary);
    if (!in) return "cannot read schedules file " + text + ": " + std::strerror(errno);
    std::stringstream buf;
    buf << in.rdbuf();
    const auto path = text;
    text = buf.str();
    auto parsed = schedule::from_json_list(text);
    if (!parsed) return "schedules file " + path + ": " + parsed.error().message();
  } else if (auto parsed = schedule::from_json_list(text); !parsed) {
    return parsed.error().message();
  }
  c.schedules_json = json::serialize(json::parse(text));
  return std::nullopt;
}

std::string show_handlers(const config& c) {
  json::object o;
  for (const auto& h : c.handlers) {
    json::object spec;
    if (!h.http.empty()) {
      spec["http"] = h.http;
    } else {
      json::array argv;
      for (const auto& a : h.exec)
        argv.emplace_back(a);
      spec["exec"] = argv;
    }
    spec["timeout"] = static_cast<double>(h.timeout.count()) / 1000.0;
    if (h.http.empty()) {
      spec["retry_exit_code"] = h.retry_exit_code;
      spec["fail_exit_code"] = h.fail_exit_code;
    }
    spec["max_output"] = h.max_output;
    o[h.name] = spec;
  }
  return serialize_utf8(o);
}

} // namespace forq::config_lists
