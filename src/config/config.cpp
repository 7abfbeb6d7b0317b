#include "config/config.hpp"

#include "config/fields.hpp"
#include "forq/redis_url.hpp"
#include "json_text.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace forq {
namespace {

namespace json = boost::json;

// Edit distance, to suggest the key a typo meant.
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

} // namespace

std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string_view>& candidates) {
  // The same name in another case or spelling style (delayMs, delay-ms: delay_ms) first.
  auto plain = [](std::string_view s) {
    std::string out;
    for (char c : s)
      if (c != '_' && c != '-')
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  for (auto c : candidates)
    if (plain(c) == plain(word)) return std::string(c);
  std::optional<std::string> best;
  std::size_t best_d = 3; // then only close typos
  for (auto c : candidates) {
    auto d = distance(word, c);
    if (d < best_d) best_d = d, best = std::string(c);
  }
  return best;
}

namespace {

std::string unknown_key_message(const std::string& where, const std::string& key) {
  std::string msg = where + ": unknown key \"" + key + "\"";
  std::vector<std::string_view> keys;
  for (const auto& f : config_fields())
    keys.push_back(f.key);
  if (auto best = closest(key, keys)) return msg + "; did you mean \"" + *best + "\"?";
  std::string known;
  for (const auto& f : config_fields())
    known += (known.empty() ? "" : ", ") + f.key;
  return msg + "; known keys: " + known;
}

std::optional<error> apply(config& cfg, const config_field& f, std::string_view value,
                           const std::string& where) {
  if (auto why = f.set(cfg, value)) {
    // A rejected URL may carry a password: print only its redacted form; a token, nothing.
    std::string shown = f.key == "redis.url" ? redact_url(value)
                        : f.key == "api_token" || f.key == "redis.sentinel_password"
                            ? std::string("***")
                            : std::string(value);
    return error(errc::invalid_value,
                 "invalid " + f.key + " \"" + shown + "\" (" + where + "): " + *why);
  }
  return std::nullopt;
}

// Where in the text a JSON parse stopped, as line:column.
std::string position_of(const std::string& text, std::size_t offset) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n')
      ++line, col = 1;
    else
      ++col;
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

std::optional<error> apply_json(config& cfg, const json::object& obj, const std::string& prefix,
                                const std::string& file) {
  const auto& fields = config_fields();
  for (const auto& [k, v] : obj) {
    std::string key = prefix + std::string(k);
    std::string where = "config file " + file;
    // One spelling only: {"redis": {"url": ...}}, never {"redis.url": ...}.
    if (k.find('.') != std::string_view::npos)
      return error(errc::invalid_value,
                   where + ": key \"" + key +
                       "\" has a dot; nest it instead, e.g. {\"redis\": {\"url\": ...}}");
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const config_field& f) { return f.key == key; });
    if (field == fields.end()) {
      bool is_section = std::any_of(fields.begin(), fields.end(), [&](const config_field& f) {
        return f.key.starts_with(key + ".");
      });
      if (is_section && v.is_object()) {
        if (auto err = apply_json(cfg, v.as_object(), key + ".", file)) return err;
        continue;
      }
      if (is_section)
        return error(errc::invalid_value,
                     where + ": \"" + key + "\" must be an object of settings");
      return error(errc::invalid_value, unknown_key_message(where, key));
    }
    std::string text;
    using kind = config_field::json_kind;
    if (field->kind == kind::list && (v.is_array() || v.is_null())) {
      text = v.is_null() ? "" : json::serialize(v); // null: not set
    } else if (field->kind == kind::list) {
      if (!v.is_string())
        return error(errc::invalid_value, where + ": " + key + " must be a JSON array or a path (" +
                                              field->allowed + ")");
      text = std::string(v.as_string());
    } else if (field->kind == kind::object) {
      if (!v.is_object())
        return error(errc::invalid_value,
                     where + ": " + key + " must be a JSON object (" + field->allowed + ")");
      text = json::serialize(v);
    } else if (field->kind == kind::boolean || v.is_bool()) {
      if (field->kind != kind::boolean || !v.is_bool())
        return error(errc::invalid_value,
                     where + ": " + key + " must be " +
                         (field->kind == kind::boolean ? std::string("true or false")
                                                       : "a " + field->allowed) +
                         ", not " + json::serialize(v));
      text = v.as_bool() ? "true" : "false";
    } else if (v.is_string()) {
      if (field->kind != kind::string)
        return error(errc::invalid_value,
                     where + ": " + key + " must be a number (" + field->allowed + ")");
      text = std::string(v.as_string());
    } else if (v.is_int64() || v.is_uint64() || v.is_double()) {
      if (field->kind == kind::string)
        return error(errc::invalid_value,
                     where + ": " + key + " must be a string (" + field->allowed + ")");
      if (field->kind == kind::integer && !v.is_int64() && !v.is_uint64())
        return error(errc::invalid_value,
                     where + ": " + key + " must be a whole number (" + field->allowed + ")");
      if (v.is_double()) {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.as_double());
        text.assign(buf, end);
      } else {
        text = json::serialize(v);
      }
    } else {
      return error(errc::invalid_value, where + ": " + key + " must be a " +
                                            (field->kind == kind::string ? "string" : "number") +
                                            " (" + field->allowed + "), not " + json::serialize(v));
    }
    if (auto err = apply(cfg, *field, text, where + " key " + key)) return err;
  }
  return std::nullopt;
}

std::optional<error> apply_file(config& cfg, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return error(errc::invalid_value,
                 "cannot read config file " + path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad())
    return error(errc::invalid_value, "cannot read config file " + path + ": read error");
  std::string text = buf.str();

  json::stream_parser parser;
  boost::system::error_code ec;
  std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (ec)
    return error(errc::invalid_value, "config file " + path + " is not valid JSON at " +
                                          position_of(text, used) + ": " + ec.message());
  if (auto twice = first_repeated_key(text))
    return error(
        errc::invalid_value,
        "config file " + path + ": key \"" + twice->path + "\" is given twice (again on line " +
            std::to_string(1 + std::count(text.begin(),
                                          text.begin() + static_cast<std::ptrdiff_t>(twice->offset),
                                          '\n')) +
            "); keep one");
  json::value root = parser.release();
  if (!root.is_object())
    return error(errc::invalid_value,
                 "config file " + path + " must hold a JSON object of settings");
  return apply_json(cfg, root.as_object(), "", path);
}

} // namespace

queue::retry_policy config::retry_policy_of(const queue_choice& q) const {
  return queue::apply(queue::apply({}, retry), q.retry);
}

unsigned config::effective_workers() const {
  if (workers != 0) return workers;
  unsigned cpus = std::thread::hardware_concurrency();
  return cpus == 0 ? 1 : cpus;
}

const std::vector<config_field>& config_fields() {
  static const std::vector<config_field> fields = make_fields();
  return fields;
}

std::function<std::optional<std::string>(const std::string&)> config_sources::process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::vector<std::string> config_sources::process_env_names() {
  std::vector<std::string> names;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("FORQ_")) continue;
    names.emplace_back(kv.substr(0, kv.find('=')));
  }
  return names;
}

expected<loaded_config> load_config(const config_sources& sources,
                                    const std::vector<std::string>& env_names) {
  loaded_config out;
  auto env = [&](const std::string& name) -> std::optional<std::string> {
    if (!sources.env) return std::nullopt;
    auto v = sources.env(name);
    // An empty variable counts as unset: containers often declare every variable, some empty.
    if (v && v->empty()) return std::nullopt;
    return v;
  };

  auto file = sources.config_file ? sources.config_file : env("FORQ_CONFIG");
  if (file)
    if (auto err = apply_file(out.cfg, *file)) return *err;

  for (const auto& f : config_fields())
    if (auto v = env(f.env))
      if (auto err = apply(out.cfg, f, *v, "environment " + f.env)) return *err;

  for (const auto& f : config_fields())
    if (auto it = sources.flags.find(f.key); it != sources.flags.end())
      if (auto err = apply(out.cfg, f, it->second, "flag " + f.flag)) return *err;

  // Variables forq sets for the commands it runs (FORQ_JOB_ID, ...) are not settings; a typo in
  // a setting's name is worth a warning, not a refusal, since the environment is shared.
  static const std::array<std::string_view, 4> not_settings{"FORQ_CONFIG", "FORQ_JOB_ID",
                                                            "FORQ_ATTEMPT", "FORQ_QUEUE"};
  for (const auto& name : env_names) {
    bool known = std::find(not_settings.begin(), not_settings.end(), name) != not_settings.end() ||
                 std::any_of(config_fields().begin(), config_fields().end(),
                             [&](const config_field& f) { return f.env == name; });
    if (!known) out.warnings.push_back("ignoring unknown environment variable " + name);
  }
  return out;
}

std::string to_json(const config& cfg) {
  json::object root;
  for (const auto& f : config_fields()) {
    json::object* at = &root;
    std::string_view key = f.key;
    for (auto dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.')) {
      auto& sub = (*at)[key.substr(0, dot)];
      if (!sub.is_object()) sub = json::object{};
      at = &sub.as_object();
      key.remove_prefix(dot + 1);
    }
    auto text = f.show(cfg);
    if (f.kind == config_field::json_kind::string)
      (*at)[key] = text;
    else if (f.kind == config_field::json_kind::boolean)
      (*at)[key] = text == "true";
    else
      (*at)[key] = json::parse(text);
  }
  return serialize_utf8(root);
}

std::string_view to_string(log_format f) {
  switch (f) {
  case log_format::text:
    return "text";
  case log_format::json:
    return "json";
  }
  return "?";
}

std::string_view to_string(log_level l) {
  switch (l) {
  case log_level::trace:
    return "trace";
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warn:
    return "warn";
  case log_level::error:
    return "error";
  case log_level::critical:
    return "critical";
  case log_level::off:
    return "off";
  }
  return "?";
}

std::string_view to_string(aof_policy p) {
  switch (p) {
  case aof_policy::everysec:
    return "everysec";
  case aof_policy::always:
    return "always";
  case aof_policy::no:
    return "no";
  case aof_policy::off:
    return "off";
  }
  return "?";
}

} // namespace forq
