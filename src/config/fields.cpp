// forq's one table of settings (docs/configuration.md): each field's file key, environment
// variable, flag, help, allowed values, and how it is read (set) and shown (show), a section at a
// time. config.cpp loads a config through it; `forq --help` and docs_check read it.
#include "config/fields.hpp"

#include "config/lists.hpp"
#include "forq/names.hpp"
#include "forq/redis_url.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <cmath>
#include <thread>

namespace forq {
namespace {

namespace json = boost::json;
using config_lists::parse_uint;
using config_lists::set_handlers;
using config_lists::set_queues;
using config_lists::set_schedules;
using config_lists::show_handlers;
using config_lists::show_queues;

constexpr unsigned max_workers = 1024;
constexpr double max_drain_seconds = 24 * 3600;

template <class Enum, std::size_t N>
std::optional<Enum> parse_enum(std::string_view text, const std::array<Enum, N>& values) {
  for (Enum e : values)
    if (to_string(e) == text) return e;
  return std::nullopt;
}

template <class Enum, std::size_t N>
std::string enum_choices(const std::array<Enum, N>& values) {
  std::string out;
  for (Enum e : values) {
    if (!out.empty()) out += "|";
    out += to_string(e);
  }
  return out;
}

constexpr std::array all_formats{log_format::text, log_format::json};
constexpr std::array all_levels{log_level::trace, log_level::debug, log_level::info,
                                log_level::warn,  log_level::error, log_level::critical,
                                log_level::off};
constexpr std::array all_aof{aof_policy::everysec, aof_policy::always, aof_policy::no,
                             aof_policy::off};

// A switch: true/false (file, flag), or 1/0, yes/no, on/off too (environment).
std::optional<bool> parse_bool(std::string_view v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text, double max) {
  double value = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() ||
      !std::isfinite(value) || value < 0 || value > max)
    return std::nullopt;
  return std::chrono::milliseconds(std::llround(value * 1000));
}

std::optional<listen_address> parse_listen(std::string_view text) {
  std::string_view host, port;
  if (text.starts_with('[')) { // [v6]:port
    auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
    in_addr a4{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) return std::nullopt;
  }
  auto p = parse_uint(port, 65535);
  if (!p) return std::nullopt;
  return listen_address{std::string(host), static_cast<std::uint16_t>(*p)};
}

std::string show_seconds(std::chrono::milliseconds ms) {
  auto count = ms.count();
  if (count % 1000 == 0) return std::to_string(count / 1000);
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<double>(count) / 1000.0);
  return std::string(buf, end);
}

std::string show_listen(const listen_address& a) {
  auto host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
  return host + ":" + std::to_string(a.port);
}

// A switch: a bare flag, true/false in the file, 1/0 (and the like) in the environment.
config_field switch_field(std::string key, std::string env, std::string flag, std::string help,
                          bool config::*member) {
  return {std::move(key),
          std::move(env),
          std::move(flag),
          std::move(help),
          "true or false (env: 1 or 0 too; the flag alone means true)",
          "",
          config_field::json_kind::boolean,
          [member](config& c, std::string_view v) -> std::optional<std::string> {
            auto b = parse_bool(v);
            if (!b) return "expected true or false";
            c.*member = *b;
            return std::nullopt;
          },
          [member](const config& c) { return std::string(c.*member ? "true" : "false"); }};
}

// redis.*: where Redis is and how forq logs in to it.
void add_redis_fields(std::vector<config_field>& f) {
  using kind = config_field::json_kind;
  f.push_back({"redis.url", "FORQ_REDIS_URL", "--redis",
               "Redis server URL; empty: forq starts its own redis-server in the data directory",
               "redis://[user:password@]host[:port][/db], rediss://..., unix:///path[?db=N], "
               "redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER_NAME[?db=N], "
               "rediss-sentinel://..., or empty",
               "URL", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 if (!v.empty()) {
                   auto parsed = parse_redis_url(v);
                   if (!parsed) return parsed.error().message();
                 }
                 c.redis_url = std::string(v);
                 return std::nullopt;
               },
               [](const config& c) { return redact_url(c.redis_url); }});

  f.push_back({"redis.aof", "FORQ_REDIS_AOF", "--redis-aof",
               "Append-only file fsync policy of the embedded redis-server (unused with --redis)",
               enum_choices(all_aof), "POLICY", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto p = parse_enum(v, all_aof);
                 if (!p) return "expected one of " + enum_choices(all_aof);
                 c.redis_aof = *p;
                 return std::nullopt;
               },
               [](const config& c) { return std::string(to_string(c.redis_aof)); }});

  f.push_back(switch_field("redis.strict", "FORQ_REDIS_STRICT", "--redis-strict",
                           "Refuse to start (exit 2) on a Redis whose maxmemory-policy may evict "
                           "keys (it would delete queued jobs silently); without it, a warning",
                           &config::redis_strict));

  f.push_back({"redis.sentinel_password", "FORQ_REDIS_SENTINEL_PASSWORD",
               "--redis-sentinel-password",
               "Password of the sentinels of a redis-sentinel:// URL (the URL's own credentials "
               "are the primary's); empty: none. Prefer the environment: flags show in ps",
               "text, or empty", "PASSWORD", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 c.redis_sentinel_password = std::string(v);
                 return std::nullopt;
               },
               [](const config& c) { return c.redis_sentinel_password.empty() ? "" : "***"; }});
}

// redis.*: what a write must reach before it counts, and how long forq waits.
void add_redis_write_fields(std::vector<config_field>& f) {
  using kind = config_field::json_kind;
  f.push_back({"redis.durability", "FORQ_REDIS_DURABILITY", "--redis-durability",
               "async: an enqueue is confirmed when the primary has it (Redis's own promise); "
               "replicated:N[:TIMEOUT_MS]: only once N replicas have it too (WAIT N TIMEOUT_MS "
               "after every enqueue and ack; default timeout 1000 ms), else it is reported "
               "\"not confirmed\"",
               "async, or replicated:N[:TIMEOUT_MS] with N from 1 to 100 and TIMEOUT_MS from 1 "
               "to 60000",
               "MODE", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 if (v == "async") {
                   c.redis_wait_replicas = 0;
                   c.redis_wait_timeout = std::chrono::milliseconds(1000);
                   return std::nullopt;
                 }
                 const std::string_view prefix = "replicated:";
                 const std::string expected =
                     "expected async or replicated:N[:TIMEOUT_MS] (N from 1 to 100, TIMEOUT_MS "
                     "from 1 to 60000), e.g. replicated:1 or replicated:2:500";
                 if (!v.starts_with(prefix)) return expected;
                 auto rest = v.substr(prefix.size());
                 auto colon = rest.find(':');
                 auto n = parse_uint(rest.substr(0, colon), 100);
                 if (!n || *n == 0) return expected;
                 std::chrono::milliseconds timeout(1000);
                 if (colon != std::string_view::npos) {
                   auto t = parse_uint(rest.substr(colon + 1), 60000);
                   if (!t || *t == 0) return expected;
                   timeout = std::chrono::milliseconds(*t);
                 }
                 c.redis_wait_replicas = static_cast<int>(*n);
                 c.redis_wait_timeout = timeout;
                 return std::nullopt;
               },
               [](const config& c) {
                 if (c.redis_wait_replicas == 0) return std::string("async");
                 return "replicated:" + std::to_string(c.redis_wait_replicas) + ":" +
                        std::to_string(c.redis_wait_timeout.count());
               }});

  f.push_back({"redis.timeout", "FORQ_REDIS_TIMEOUT", "--redis-timeout",
               "Seconds a Redis reply may be late before the connection is dropped and made "
               "again (a blocking fetch adds its own wait); connecting and logging in get the "
               "smaller of this and 3 s",
               "seconds from 0.1 to 300, fractions allowed", "SECONDS", kind::number,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto d = parse_seconds(v, 300);
                 if (!d || *d < std::chrono::milliseconds(100))
                   return "expected seconds from 0.1 to 300 (e.g. 5 or 0.5)";
                 c.redis_timeout = *d;
                 return std::nullopt;
               },
               [](const config& c) { return show_seconds(c.redis_timeout); }});
}

// The process tree and its HTTP listener.
void add_process_fields(std::vector<config_field>& f) {
  using kind = config_field::json_kind;
  f.push_back({"workers", "FORQ_WORKERS", "--workers",
               "Worker processes forked by the master; 0: one per CPU",
               "an integer from 0 to " + std::to_string(max_workers), "N", kind::integer,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto n = parse_uint(v, max_workers);
                 if (!n)
                   return "expected an integer from 0 to " + std::to_string(max_workers) +
                          " (0 = one per CPU)";
                 c.workers = *n;
                 return std::nullopt;
               },
               [](const config& c) { return std::to_string(c.workers); }});

  f.push_back({"listen", "FORQ_LISTEN", "--listen",
               "HTTP listener address (health, metrics, API), HOST:PORT; port 0: any free port",
               "HOST:PORT with an IP address or localhost, e.g. 127.0.0.1:7600, [::1]:7600, "
               "0.0.0.0:7600",
               "HOST:PORT", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto a = parse_listen(v);
                 if (!a)
                   return "expected HOST:PORT with an IP address or localhost and a port "
                          "from 0 to 65535, e.g. 127.0.0.1:7600 or [::1]:7600";
                 c.listen = *a;
                 return std::nullopt;
               },
               [](const config& c) { return show_listen(c.listen); }});

  f.push_back({"data_dir", "FORQ_DATA_DIR", "--data-dir",
               "Directory for the embedded Redis (socket, AOF, log) and forq's lock file",
               "a non-empty path", "DIR", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 if (v.empty()) return "expected a non-empty path";
                 c.data_dir = std::filesystem::path(std::string(v));
                 return std::nullopt;
               },
               [](const config& c) { return c.data_dir.string(); }});

  f.push_back({"drain_timeout", "FORQ_DRAIN_TIMEOUT", "--drain-timeout",
               "Seconds in-flight jobs may run on after SIGTERM before they are handed back",
               "seconds from 0 to 86400, fractions allowed", "SECONDS", kind::number,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto d = parse_seconds(v, max_drain_seconds);
                 if (!d) return "expected seconds from 0 to 86400 (e.g. 30 or 2.5)";
                 c.drain_timeout = *d;
                 return std::nullopt;
               },
               [](const config& c) { return show_seconds(c.drain_timeout); }});

  f.push_back(
      {"api_token", "FORQ_API_TOKEN", "--api-token",
       "Bearer token the HTTP API's mutating requests (POST, PUT, DELETE) must carry; empty: "
       "none needed (the listener is on loopback by default). Prefer the environment: "
       "flags show in ps",
       "16 to 1024 printable ASCII characters without spaces, or empty", "TOKEN", kind::string,
       [](config& c, std::string_view v) -> std::optional<std::string> {
         if (!v.empty() &&
             (v.size() < 16 || v.size() > 1024 ||
              !std::all_of(v.begin(), v.end(), [](char ch) { return ch > ' ' && ch < 127; })))
           return "use 16 to 1024 printable ASCII characters without spaces";
         c.api_token = std::string(v);
         return std::nullopt;
       },
       [](const config& c) { return c.api_token.empty() ? "" : "***"; }});

  f.push_back({"ui", "FORQ_UI", "--ui",
               "The dashboard at /ui/: on, read-only (its pages, and no change a browser asks "
               "for), or off",
               "on, read-only or off", "MODE", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 if (v == "on")
                   c.ui = config::ui_mode::on;
                 else if (v == "read-only")
                   c.ui = config::ui_mode::read_only;
                 else if (v == "off")
                   c.ui = config::ui_mode::off;
                 else
                   return "expected on, read-only or off";
                 return std::nullopt;
               },
               [](const config& c) {
                 return std::string(c.ui == config::ui_mode::on          ? "on"
                                    : c.ui == config::ui_mode::read_only ? "read-only"
                                                                         : "off");
               }});

  f.push_back({"http_hosts", "FORQ_HTTP_HOSTS", "--http-hosts",
               "Host names the HTTP listener answers to besides localhost, *.localhost and IP "
               "addresses (comma-separated); a request for another name is refused (DNS rebinding)",
               "comma-separated host names of A-Z a-z 0-9 . -, e.g. forq.internal,jobs.example.com",
               "NAMES", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 std::vector<std::string> names;
                 while (!v.empty()) {
                   auto comma = v.find(',');
                   auto name = v.substr(0, comma);
                   v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
                   if (name.empty() || name.size() > 253 ||
                       !std::all_of(name.begin(), name.end(), [](char ch) {
                         return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                                ch == '-';
                       }))
                     return "expected host names of A-Z a-z 0-9 . - separated by commas";
                   std::string lower(name);
                   for (auto& ch : lower)
                     ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                   names.push_back(lower);
                 }
                 c.http_hosts = std::move(names);
                 return std::nullopt;
               },
               [](const config& c) {
                 std::string out;
                 for (const auto& n : c.http_hosts)
                   out += (out.empty() ? "" : ",") + n;
                 return out;
               }});

  f.push_back(switch_field("api_open", "FORQ_API_OPEN", "--api-open",
                           "Without api_token, take the API's mutating requests from any peer, "
                           "not only from loopback (others get 403): for a listener on a network "
                           "you trust",
                           &config::api_open));
}

// What the workers consume and how they run it.
void add_queue_fields(std::vector<config_field>& f) {
  using kind = config_field::json_kind;
  f.push_back({"retry", "FORQ_RETRY", "--retry",
               "Retry policy of every queue's jobs (a queue's own in --queues, then a job's own, "
               "go over it): attempts, fixed or exponential, the base wait, its cap, jitter "
               "(docs/retries.md)",
               "parts separated by '/': attempts 1 to 1000, fixed|exponential, durations such as "
               "500ms, 30s, 5m, 1h (1ms to 7d; the base wait, then the cap), jitter|nojitter; "
               "e.g. 10/fixed/30s",
               "POLICY", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto parsed = queue::parse_retry(v);
                 if (!parsed) return parsed.error().message();
                 c.retry = *parsed;
                 return std::nullopt;
               },
               [](const config& c) { return queue::to_string(queue::apply({}, c.retry)); }});

  f.push_back(
      {"queues", "FORQ_QUEUES", "--queues",
       "Queues each worker consumes, comma-separated, each with an optional weight (while "
       "several have work, each gets its weighted share of the concurrency), an optional "
       "default handler (for its jobs that name none) and an optional retry policy over "
       "--retry",
       "NAME[:WEIGHT][=HANDLER][@RETRY],... with names of 1 to 128 of A-Z a-z 0-9 _ . - "
       "and weights from 1 to 1000, e.g. default or emails:3=send_email@10/fixed/30s,reports",
       "QUEUES", kind::string, set_queues, show_queues});

  f.push_back({"concurrency", "FORQ_CONCURRENCY", "--concurrency",
               "Jobs each worker runs at once, all its queues together",
               "an integer from 1 to 100000", "N", kind::integer,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto n = parse_uint(v, 100000);
                 if (!n || *n == 0) return "expected an integer from 1 to 100000";
                 c.concurrency = *n;
                 return std::nullopt;
               },
               [](const config& c) { return std::to_string(c.concurrency); }});

  f.push_back(
      {"handlers", "FORQ_HANDLERS", "--handlers",
       "Handlers besides the built-ins (noop, echo, sleep, fail), as a JSON object: name -> "
       "a command, {\"exec\": [argv...], \"timeout\": seconds, \"retry_exit_code\": N, "
       "\"fail_exit_code\": N, \"max_output\": bytes}, or an app to POST each job to, {\"http\": "
       "\"http://...\", "
       "\"timeout\": seconds, \"max_output\": bytes} (docs/handlers.md)",
       "a JSON object of handler names (A-Z a-z 0-9 _ . : -) to {\"exec\": [...]} or "
       "{\"http\": URL} settings; timeout 0.001 to 86400 s (default 60), retry_exit_code "
       "(exec only) 1 to 255 (default 75), fail_exit_code (exec only) 1 to 255 (default 65), "
       "max_output 1 to 67108864 (default 1048576)",
       "JSON", kind::object, set_handlers, show_handlers});

  f.push_back({"schedules", "FORQ_SCHEDULES", "--schedules",
               "Schedules this host keeps in Redis (docs/schedules.md): a JSON array of "
               "{\"queue\", \"name\", \"cron\" or \"every_ms\", ...}, or the path of a file "
               "that holds one; added, changed and removed to match at start and on SIGHUP",
               "a JSON array of schedules, or a path to a file holding one", "JSON|FILE",
               kind::list, set_schedules, [](const config& c) {
                 return c.schedules_json.empty() ? std::string("null") : c.schedules_json;
               }});

  f.push_back({"lease", "FORQ_LEASE", "--lease",
               "Seconds a fetched job stays leased without renewal; a worker that dies holding it "
               "lets another run it after this long",
               "seconds from 0.3 to 3600, fractions allowed", "SECONDS", kind::number,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto d = parse_seconds(v, 3600);
                 if (!d || *d < std::chrono::milliseconds(300))
                   return "expected seconds from 0.3 to 3600 (e.g. 30 or 2.5)";
                 c.lease = *d;
                 return std::nullopt;
               },
               [](const config& c) { return show_seconds(c.lease); }});

  f.push_back({"attempt_timeout", "FORQ_ATTEMPT_TIMEOUT", "--attempt-timeout",
               "Seconds an attempt may run before it is cancelled and retried per policy (the "
               "handler's awaits end; an exec command gets SIGTERM); 0: no limit (exec and http "
               "handlers keep their own timeout, the shorter wins)",
               "seconds from 0 to 86400, fractions allowed (0: no limit)", "SECONDS", kind::number,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto d = parse_seconds(v, 86400);
                 if (!d) return "expected seconds from 0 to 86400 (e.g. 300 or 2.5; 0: no limit)";
                 c.attempt_timeout = *d;
                 return std::nullopt;
               },
               [](const config& c) { return show_seconds(c.attempt_timeout); }});
}

// log.*
void add_log_fields(std::vector<config_field>& f) {
  using kind = config_field::json_kind;
  f.push_back({"log.format", "FORQ_LOG_FORMAT", "--log-format",
               "Log line format: text for people, json for log collectors",
               enum_choices(all_formats), "FORMAT", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto p = parse_enum(v, all_formats);
                 if (!p) return "expected one of " + enum_choices(all_formats);
                 c.log_fmt = *p;
                 return std::nullopt;
               },
               [](const config& c) { return std::string(to_string(c.log_fmt)); }});

  f.push_back({"log.level", "FORQ_LOG_LEVEL", "--log-level", "Lowest level logged",
               enum_choices(all_levels), "LEVEL", kind::string,
               [](config& c, std::string_view v) -> std::optional<std::string> {
                 auto p = parse_enum(v, all_levels);
                 if (!p) return "expected one of " + enum_choices(all_levels);
                 c.log_lvl = *p;
                 return std::nullopt;
               },
               [](const config& c) { return std::string(to_string(c.log_lvl)); }});
}

} // namespace

std::vector<config_field> make_fields() {
  std::vector<config_field> f;
  add_redis_fields(f);
  add_redis_write_fields(f);
  add_process_fields(f);
  add_queue_fields(f);
  add_log_fields(f);
  return f;
}

} // namespace forq
