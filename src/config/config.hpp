#pragma once

#include "forq/queue/retry.hpp"
#include "log.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace forq {

// How the embedded redis-server keeps its append-only file.
enum class aof_policy {
  everysec, // fsync once a second: at most ~1 s of acknowledged writes lost on a host crash
  always,   // fsync every write: nothing lost, slower
  no,       // AOF on, fsync left to the kernel
  off       // no AOF: the queue is lost when the embedded Redis stops
};

struct listen_address {
  std::string host = "127.0.0.1"; // an IP literal (IPv6 without brackets)
  std::uint16_t port = 7600;      // 0: any free port
};

// forq's whole configuration. Filled, in this order, from defaults, the JSON file, FORQ_*
// environment variables and command-line flags (later sources win), then validated once before
// any I/O. docs/configuration.md lists every field; `forq --help` prints the same table.
struct config {
  // file `redis.url`, env FORQ_REDIS_URL, flag --redis. Empty: forq starts its own redis-server
  // in data_dir (the embedded default).
  std::string redis_url;
  // file `redis.aof`, env FORQ_REDIS_AOF, flag --redis-aof. Embedded Redis only.
  aof_policy redis_aof = aof_policy::everysec;
  // file `redis.timeout`, env FORQ_REDIS_TIMEOUT, flag --redis-timeout (seconds). A reply later
  // than this (a blocking fetch: its own wait more) drops the connection, which is made again;
  // connecting and logging in get the smaller of this and 3 s.
  std::chrono::milliseconds redis_timeout{std::chrono::seconds(5)};
  // file `redis.strict`, env FORQ_REDIS_STRICT, flag --redis-strict. A Redis whose
  // maxmemory-policy may evict keys (anything but noeviction) deletes queued jobs silently:
  // forq warns at start; strict makes it fatal (exit 2).
  bool redis_strict = false;
  // file `redis.sentinel_password`, env FORQ_REDIS_SENTINEL_PASSWORD, flag
  // --redis-sentinel-password. The sentinels' own password (a redis-sentinel:// URL's
  // credentials are the primary's).
  std::string redis_sentinel_password;
  // file `redis.durability`, env FORQ_REDIS_DURABILITY, flag --redis-durability: `async`
  // (replicas: 0) or `replicated:N[:TIMEOUT_MS]`. With N > 0 every enqueue and ack is followed by
  // WAIT N TIMEOUT_MS; an enqueue fewer replicas confirmed is reported "not confirmed".
  int redis_wait_replicas = 0;
  std::chrono::milliseconds redis_wait_timeout{1000};
  // file `workers`, env FORQ_WORKERS, flag --workers. Child processes; 0 = one per CPU.
  unsigned workers = 0;
  // file `listen`, env FORQ_LISTEN, flag --listen. HTTP listener (health, metrics, API).
  listen_address listen;
  // file `api_token`, env FORQ_API_TOKEN, flag --api-token. When set, the HTTP API's mutating
  // requests (anything but GET and HEAD) need `Authorization: Bearer <token>`. A secret: never
  // shown, logged or echoed.
  std::string api_token;
  // file `api_open`, env FORQ_API_OPEN, flag --api-open. Without api_token, the API's mutating
  // requests are taken from loopback peers only (others get 403); open takes them from anyone
  // who can reach the listener. Say so on purpose.
  bool api_open = false;
  // file `ui`, env FORQ_UI, flag --ui: the dashboard at /ui/ (docs/dashboard.md). on; read-only
  // (its pages show, and every change a browser asks for is refused); off (no pages).
  enum class ui_mode { on, read_only, off } ui = ui_mode::on;
  // file `http_hosts`, env FORQ_HTTP_HOSTS, flag --http-hosts: names (comma-separated) the HTTP
  // listener answers to besides loopback names and IP addresses: a request whose Host header is
  // another name is refused (403), so a DNS-rebinding page cannot reach the API.
  std::vector<std::string> http_hosts;
  // file `data_dir`, env FORQ_DATA_DIR, flag --data-dir. Embedded Redis socket, AOF, lock.
  std::filesystem::path data_dir = ".forq";
  // file `drain_timeout`, env FORQ_DRAIN_TIMEOUT, flag --drain-timeout (seconds, may be
  // fractional). How long in-flight jobs may run on after TERM; 0 = hand them back at once.
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(30)};
  // file `retry`, env FORQ_RETRY, flag --retry. The retry policy of every queue this worker
  // consumes, over forq's own (3/exponential/1s/1h): docs/retries.md.
  queue::retry_override retry;
  // file `queues`, env FORQ_QUEUES, flag --queues. "name[:weight][=handler][@retry],...": the
  // queues each worker consumes, sharing its concurrency by weight (1 to 1000, default 1).
  struct queue_choice {
    std::string name;
    unsigned weight = 1;
    std::string default_handler; // runs the queue's jobs that name no handler
    queue::retry_override retry; // over the `retry` setting, for this queue's jobs
  };
  std::vector<queue_choice> queues{{"default", 1, "", {}}};
  // The retry policy of queue `q`'s jobs (before a job's own): forq's, `retry`, the queue's.
  queue::retry_policy retry_policy_of(const queue_choice& q) const;
  // file `concurrency`, env FORQ_CONCURRENCY, flag --concurrency. Jobs each worker runs at
  // once, all its queues together.
  unsigned concurrency = 64;
  // file `handlers`, env FORQ_HANDLERS, flag --handlers (a JSON object). Handler name ->
  // how it runs: {"resize": {"exec": ["./resize", "--fast"], "timeout": 60}} (docs/handlers.md).
  struct handler_spec {
    std::string name;
    std::vector<std::string> exec; // argv (an exec handler)
    std::string http;              // a URL (an http handler)
    std::chrono::milliseconds timeout{60000};
    int retry_exit_code = 75;
    int fail_exit_code = 65;
    std::size_t max_output = 1u << 20;
  };
  std::vector<handler_spec> handlers;
  // file `schedules`, env FORQ_SCHEDULES, flag --schedules: a JSON array of schedules (as
  // `forq schedule list --json` writes them, each with its "queue"), or the path of a file that
  // holds one. Kept as that array's JSON text, checked; empty: not set (this host leaves the
  // schedules in Redis alone). Every worker reconciles it as it starts, so at start and on
  // SIGHUP (docs/schedules.md).
  std::string schedules_json;
  // file `lease`, env FORQ_LEASE, flag --lease (seconds). How long a fetched job stays leased
  // without renewal (renewed every third of it while it runs).
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  // file `attempt_timeout`, env FORQ_ATTEMPT_TIMEOUT, flag --attempt-timeout (seconds; 0:
  // none). An attempt still running this long is cancelled and retried per policy
  // (queue::consumer_options::attempt_timeout).
  std::chrono::milliseconds attempt_timeout{0};
  // file `log.format`, env FORQ_LOG_FORMAT, flag --log-format.
  log_format log_fmt = log_format::text;
  // file `log.level`, env FORQ_LOG_LEVEL, flag --log-level.
  log_level log_lvl = log_level::info;

  // The number of child processes `workers` means on this machine.
  unsigned effective_workers() const;
};

// One field of the table behind config: how it is named in each source, and how to read it.
// File, environment and flags all go through the same `set`, so a value means the same
// wherever it comes from.
struct config_field {
  // boolean: a bare flag; list: a JSON array, or a string (a path)
  enum class json_kind { string, integer, number, object, boolean, list };

  std::string key;     // in the JSON file, dotted for nesting: "redis.url"
  std::string env;     // "FORQ_REDIS_URL"
  std::string flag;    // "--redis"
  std::string help;    // one line, with the unit
  std::string allowed; // what values are allowed, for help and errors
  std::string metavar; // what --help shows after the flag: URL, N, SECONDS, ...
  json_kind kind = json_kind::string;
  // Parses and checks one value; returns why it is not allowed, or nothing when it was set.
  std::function<std::optional<std::string>(config&, std::string_view)> set;
  // The current value, printable (secrets redacted).
  std::function<std::string(const config&)> show;
};

const std::vector<config_field>& config_fields();

// Where configuration comes from. Flags are keyed by field key ("redis.url"), as the CLI
// collected them; env is a lookup so tests need not touch the process environment.
struct config_sources {
  std::optional<std::string> config_file; // --config (FORQ_CONFIG is read from env)
  std::map<std::string, std::string> flags;
  std::function<std::optional<std::string>(const std::string&)> env;

  static std::function<std::optional<std::string>(const std::string&)> process_env();
  static std::vector<std::string> process_env_names(); // every FORQ_* name set now
};

struct loaded_config {
  config cfg;
  std::vector<std::string> warnings; // e.g. an unknown FORQ_* variable; logged once logging is up
};

// Defaults, then file, then env, then flags; each value is validated as it is read (no setting
// depends on another yet, so there is no whole-config check).
// env_names lists the FORQ_* variables present, to warn about unknown ones.
// Or errc::invalid_value, the message naming the source, the field, the value and what is allowed.
expected<loaded_config> load_config(const config_sources& sources,
                                    const std::vector<std::string>& env_names = {});

// The effective configuration as JSON (secrets redacted), for `forq config` and the start-up log.
std::string to_json(const config& cfg);

// The candidate a mistyped `word` most likely meant: the same name in another case or style
// (delayMs, delay-ms for delay_ms), else one within two edits; nothing if none is close. For
// "did you mean" in every message that refuses a name (config keys, API fields, flags).
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string_view>& candidates);

std::string_view to_string(log_format f);
std::string_view to_string(log_level l);
std::string_view to_string(aof_policy p);

} // namespace forq
