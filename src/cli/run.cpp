// The forq command line (forq::run, forq/forq.hpp): parses flags, loads and validates the
// configuration once, sets up logging, then hands over to one subcommand. Every usage or
// configuration error ends here with one message on stderr and exit code 2.
#include "bench/bench.hpp"
#include "cli/ops.hpp"
#include "config/config.hpp"
#include "exit_codes.hpp"
#include "forq/forq.hpp"
#include "forq/queue/producer.hpp"
#include "log.hpp"
#include "master/master.hpp"
#include "process/process_title.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"
#include "worker/worker.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>

namespace {

// The settings a command that only talks to Redis takes (enqueue, job, dead, schedule, ...):
// where Redis is and how to reach it, and the log's shape. A worker setting (--queues,
// --workers) means nothing there, and taking it silently would act on another queue than the
// one meant (`forq dead purge --queues emails` purging `default`).
bool connection_setting(const forq::config_field& f) {
  return f.key.starts_with("redis.") || f.key == "data_dir" || f.key.starts_with("log.");
}

// Every configuration field becomes a flag on `serve`, `config` and `bench`, and on the
// top-level command, so both `forq --workers 4 serve` and `forq serve --workers 4` work; the
// other commands take the connection settings alone (connection_setting). Each --help page
// lists the flags its command takes, with their defaults.
struct flag_set {
  std::string config_file;
  std::map<std::string, std::string> values; // by field key
  std::vector<std::pair<CLI::Option*, std::string>> options;
  std::vector<CLI::Option*> top_level_only; // on the top-level command, not a connection setting

  enum class which { all, connection };

  // `except`: flags the subcommand uses for something of its own (enqueue's --retry is the
  // job's policy).
  void add_to(CLI::App& app, which set = which::all, const std::vector<std::string>& except = {}) {
    app.add_option("--config", config_file,
                   "JSON configuration file; flags override environment overrides file "
                   "(env FORQ_CONFIG)")
        ->type_name("FILE");
    const forq::config defaults;
    for (const auto& f : forq::config_fields()) {
      if (std::find(except.begin(), except.end(), f.flag) != except.end()) continue;
      if (set == which::connection && !connection_setting(f)) continue;
      const char* group = set == which::connection ? "Connection" : "Options";
      auto help = f.help + " (env " + f.env + ", file key " + f.key + ")";
      if (f.kind == forq::config_field::json_kind::boolean) { // a bare flag: present = true
        auto* opt = app.add_flag_callback(
            f.flag, [this, key = f.key] { values[key] = "true"; }, help);
        opt->group(group);
        options.emplace_back(opt, f.key);
        if (!app.get_parent() && !connection_setting(f)) top_level_only.push_back(opt);
        continue;
      }
      auto* opt = app.add_option(f.flag, values[f.key], help);
      opt->type_name(f.metavar);
      auto shown = f.show(defaults);
      opt->default_str(shown.empty() ? "\"\"" : shown);
      opt->group(group);
      options.emplace_back(opt, f.key);
      if (!app.get_parent() && !connection_setting(f)) top_level_only.push_back(opt);
    }
  }

  // A worker setting given before a command that does not take it: its name, or nothing.
  std::optional<std::string> misplaced() const {
    for (const auto* o : top_level_only)
      if (o->count() > 0) return o->get_name();
    return std::nullopt;
  }

  forq::config_sources sources() const {
    forq::config_sources s;
    s.env = forq::config_sources::process_env();
    if (!config_file.empty()) s.config_file = config_file;
    for (const auto& [opt, key] : options)
      if (opt->count() > 0) s.flags[key] = values.at(key);
    return s;
  }
};

// A CLI11 check in forq's words, from the one set of limits: "--priority: 12 is not allowed:
// use a whole number from 0 to 9 (higher runs first)".
CLI::Validator within(const forq::queue::bounds& b) {
  return CLI::Validator(
      [b](std::string& text) {
        auto ok = forq::queue::check_bounds(b, text);
        return ok ? std::string() : ok.error().message();
      },
      "", "");
}

// The same for a number that may have a fraction (bench's --rate, --duration).
CLI::Validator within(double lo, double hi, std::string unit) {
  return CLI::Validator(
      [lo, hi, unit](std::string& text) -> std::string {
        double v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc{} && end == text.data() + text.size() && v >= lo && v <= hi) return {};
        return "\"" + text + "\" is not allowed: use a number from " +
               forq::serialize_utf8(boost::json::value(lo)) + " to " +
               forq::serialize_utf8(boost::json::value(hi)) + unit;
      },
      "", "");
}

// One of a few words, in forq's words: "\"lst\" is not one of list, retry, purge; did you mean
// list?"
CLI::Validator one_of(std::vector<std::string> words) {
  return CLI::Validator(
      [words](std::string& text) -> std::string {
        if (std::find(words.begin(), words.end(), text) != words.end()) return {};
        std::string all;
        for (const auto& w : words)
          all += (all.empty() ? "" : ", ") + w;
        std::vector<std::string_view> candidates(words.begin(), words.end());
        auto best = forq::closest(text, candidates);
        return "\"" + text + "\" is not one of " + all +
               (best ? "; did you mean " + *best + "?" : std::string());
      },
      "", "");
}

// The (sub)command the command line names, as deep as it goes (`forq schedule add`), and its
// words ("forq schedule add").
std::pair<const CLI::App*, std::string> named_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::string words = "forq";
  for (int i = 1; i < argc; ++i)
    for (const auto* sub : at->get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == argv[i]) {
        at = sub;
        words += " " + sub->get_name();
        break;
      }
  return {at, words};
}

// The long option names the command line may use: those of the command it names (--workers,
// --delay-ms, ...; the top-level command's when it names none).
std::vector<std::string> long_names(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> names{"--help", "--version"};
  for (const auto* o : named_command(app, argc, argv).first->get_options())
    for (const auto& n : o->get_lnames())
      names.push_back("--" + n);
  return names;
}

// CLI11 reports a mistyped command as a missing one, and a mistyped option as "not expected";
// find the word the user typed and what it most likely meant.
std::string explain(const CLI::ParseError& e, int argc, char** argv,
                    const std::vector<std::string>& commands, const CLI::App& app) {
  const auto options = long_names(app, argc, argv);
  // Only an argument CLI11 did not expect can be a mistyped option (other errors say their own).
  const bool extras = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
  for (int i = 1; i < argc && extras; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--")) {
      auto name = arg.substr(0, arg.find('='));
      if (std::find(options.begin(), options.end(), name) != options.end()) continue;
      std::vector<std::string_view> candidates(options.begin(), options.end());
      auto best = forq::closest(name, candidates);
      auto suggestion = best ? "; did you mean " + *best + "?" : std::string();
      const auto& top = app.get_options();
      const bool a_setting = std::any_of(top.begin(), top.end(), [&](const CLI::Option* o) {
        return o->check_lname(std::string(name.substr(2)));
      });
      if (a_setting)
        return std::string(name) + " is a setting of forq serve, not an option of " +
               named_command(app, argc, argv).second + suggestion;
      return "unknown option " + std::string(name) + suggestion;
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("-")) {
      bool takes_value = arg.starts_with("--") && arg.find('=') == std::string_view::npos &&
                         arg != "--help" && arg != "--version";
      if (takes_value) ++i;
      continue;
    }
    if (std::find(commands.begin(), commands.end(), arg) != commands.end()) return e.what();
    std::string all;
    for (const auto& c : commands)
      all += (all.empty() ? "" : ", ") + c;
    return "unknown command \"" + std::string(arg) + "\"; the commands are: " + all;
  }
  return "a command is required: serve, config, enqueue, queues, job, dead, pause, resume, "
         "limit, schedule or bench";
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "forq: %s\nRun 'forq --help' for the commands and options.\n",
               message.c_str());
  return forq::exit_code::fatal;
}

// Every command's arguments, filled in by CLI11 as it parses (it keeps pointers into this, so it
// stays where it is made).
struct command_line {
  command_line() = default;
  command_line(const command_line&) = delete;
  command_line& operator=(const command_line&) = delete;

  flag_set flags;
  CLI::App *serve = nullptr, *show_config = nullptr, *enqueue = nullptr, *queues = nullptr,
           *job = nullptr, *dead = nullptr, *pause = nullptr, *resume = nullptr, *limit = nullptr,
           *bench = nullptr, *schedule = nullptr, *schedule_add = nullptr, *schedule_list = nullptr,
           *schedule_remove = nullptr, *schedule_pause = nullptr, *schedule_resume = nullptr,
           *schedule_run = nullptr, *cancel = nullptr, *events = nullptr;
  forq::cli::events_args events_a;
  forq::cli::enqueue_args enq;
  bool queues_json = false;
  std::string job_id;
  std::optional<std::string> job_queue;
  bool job_json = false;
  std::optional<double> job_wait;
  std::string cancel_reason;
  forq::cli::dead_args dead_a;
  std::string pause_queue;
  bool create = false;
  std::string limit_queue, limit_max;
  long long limit_per_ms = 1000;
  forq::bench::bench_args bench_a;
  forq::bench::idle_args idle_a;
  forq::cli::schedule_args sched;
  bool schedule_json = false;
};

void add_service_commands(CLI::App& app, command_line& c) {
  c.serve = app.add_subcommand(
      "serve", "Run the service: start the embedded Redis (unless --redis is given), supervise, "
               "and stop cleanly on SIGINT or SIGTERM.");
  c.flags.add_to(*c.serve);
  c.show_config = app.add_subcommand(
      "config", "Print the effective configuration as JSON (secrets redacted) and exit; exit "
                "code 2 if it is invalid.");
  c.flags.add_to(*c.show_config);
}

void add_enqueue_command(CLI::App& app, command_line& c) {
  c.enqueue = app.add_subcommand(
      "enqueue", "Add a job (PAYLOAD_JSON given) or many (one JSON payload per stdin line, "
                 "NDJSON); prints each job's id. Exit 1 if any job was refused (the others are "
                 "added; stderr names the refused lines).");
  c.flags.add_to(*c.enqueue, flag_set::which::connection, {"--retry"});
  c.enqueue->add_option("--queue", c.enq.queue, "queue name")->default_str("default");
  c.enqueue->add_option("--handler", c.enq.handler,
                        "handler that runs the job (none: the queue's default handler, named by "
                        "the workers' --queues QUEUE=HANDLER)");
  c.enqueue->add_option("--id", c.enq.id,
                        "your id for the job: enqueued at most once (a duplicate prints "
                        "\"<id>\\tduplicate\" and adds nothing)");
  c.enqueue
      ->add_option("--delay-ms", c.enq.delay_ms,
                   "run no earlier than this many ms from now (0 to 31536000000, a year)")
      ->check(within(forq::queue::delay_bounds));
  c.enqueue->add_option("--priority", c.enq.priority, "0 to 9, higher runs first")
      ->check(within(forq::queue::priority_bounds));
  c.enqueue->add_option("--attempts", c.enq.attempts, "attempts at most (1 to 1000)")
      ->check(within(forq::queue::attempts_bounds));
  c.enqueue
      ->add_option("--retry", c.enq.retry,
                   "the job's retry policy over its queue's, e.g. 10/fixed/30s "
                   "(docs/retries.md)")
      ->type_name("POLICY")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            auto parsed = forq::queue::parse_retry(text);
            return parsed ? std::string() : "\"" + text + "\": " + parsed.error().message();
          },
          "", ""));
  c.enqueue
      ->add_option("--wait", c.enq.wait_s,
                   "wait up to SECONDS for the job's end and print its result; exit 0 "
                   "completed, 1 dead or cancelled (why on stderr), 124 still running "
                   "(docs/job-control.md)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0));
  c.enqueue->add_flag("--waitable", c.enq.waitable,
                      "announce the job's end to waiters (forq job ID --wait, the API's "
                      "?wait=), which then wake at once");
  c.enqueue->add_option("PAYLOAD_JSON", c.enq.payload, "the job's payload (JSON)");
}

// queues, job, dead: what an operator looks at.
void add_inspect_commands(CLI::App& app, command_line& c) {
  c.queues = app.add_subcommand(
      "queues", "For each queue: ready, delayed, active, dead, and completed (a running total).");
  c.flags.add_to(*c.queues, flag_set::which::connection);
  c.queues->add_flag("--json", c.queues_json, "one JSON array");

  c.job = app.add_subcommand(
      "job", "One job: state, attempts, result, last error. Exit 1 if no queue knows it.");
  c.flags.add_to(*c.job, flag_set::which::connection);
  c.job->add_option("ID", c.job_id, "the job's id")->required();
  c.job->add_option("--queue", c.job_queue, "look in this queue only (default: every queue)");
  c.job->add_flag("--json", c.job_json, "as a JSON object");
  c.job
      ->add_option("--wait", c.job_wait,
                   "wait up to SECONDS for the job's end first; exit 0 completed, 1 dead or "
                   "cancelled, 124 still running")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0));
  c.cancel = app.add_subcommand(
      "cancel", "Cancel a job: a waiting one never runs; a running one is told to stop, on "
                "whichever host runs it. Exit 1 if it had already ended or no queue knows it.");
  c.flags.add_to(*c.cancel, flag_set::which::connection);
  c.cancel->add_option("ID", c.job_id, "the job's id")->required();
  c.cancel->add_option("--queue", c.job_queue, "the job's queue (default: whichever knows it)");
  c.cancel->add_option("--reason", c.cancel_reason, "why, kept with the job (1,000 bytes)");
  c.cancel->add_flag("--json", c.job_json, "the outcome and the job as a JSON object");
  forq::cli::dead_args dead_a;
  c.dead = app.add_subcommand(
      "dead", "Dead jobs: list them, retry them (back to ready, attempts reset) or purge them.");
  c.flags.add_to(*c.dead, flag_set::which::connection);
  c.dead->add_option("ACTION", c.dead_a.action, "list, retry or purge")
      ->required()
      ->check(one_of({"list", "retry", "purge"}));
  c.dead->add_option("--queue", c.dead_a.queue, "queue name")->default_str("default");
  c.dead->add_option("--id", c.dead_a.ids, "only these jobs (repeatable; default: all)");
  c.dead->add_option("--limit", c.dead_a.limit, "list at most this many, oldest first")
      ->default_str("100");
  c.dead->add_flag("--json", c.dead_a.json, "list as a JSON array");
}

// pause, resume, limit: what an operator changes.
void add_control_commands(CLI::App& app, command_line& c) {
  const std::string create_help =
      "set up a queue this Redis does not know yet (without it, an unknown name is refused: "
      "most likely a typo)";
  c.pause = app.add_subcommand(
      "pause", "Stop consumers fetching from a queue (within 250 ms); jobs running finish.");
  c.flags.add_to(*c.pause, flag_set::which::connection);
  c.pause->add_option("QUEUE", c.pause_queue, "queue name")->required();
  c.pause->add_flag("--create", c.create, create_help);
  c.resume = app.add_subcommand("resume", "Let consumers fetch from a paused queue again.");
  c.flags.add_to(*c.resume, flag_set::which::connection);
  c.resume->add_option("QUEUE", c.pause_queue, "queue name")->required();
  c.resume->add_flag("--create", c.create, create_help);
  c.limit = app.add_subcommand(
      "limit", "Rate-limit a queue: at most N jobs start per --per-ms, across every worker on "
               "this Redis; N = off removes the limit.");
  c.flags.add_to(*c.limit, flag_set::which::connection);
  c.limit->add_option("QUEUE", c.limit_queue, "queue name")->required();
  c.limit->add_option("N", c.limit_max, "jobs per interval (1 to 1000000), or off")
      ->required()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "off") return {};
            auto ok = forq::queue::check_bounds(forq::queue::rate_max_bounds, text);
            return ok ? std::string() : ok.error().message() + ", or off";
          },
          "", ""));
  c.limit->add_flag("--create", c.create, create_help);
  c.limit->add_option("--per-ms", c.limit_per_ms, "the interval in ms (1 to 86400000)")
      ->default_str("1000")
      ->check(within(forq::queue::rate_interval_bounds));
  c.events = app.add_subcommand(
      "events", "A queue's events (added, active, progress, completed, failed, retrying, dead, "
                "cancelled, stalled): the last ones, and with --follow the new ones as they "
                "come. Best-effort, and written only once turned on with --on.");
  c.flags.add_to(*c.events, flag_set::which::connection);
  c.events->add_option("QUEUE", c.events_a.queue, "queue name")->required();
  c.events->add_flag("--follow,-f", c.events_a.follow, "then print new events until killed");
  c.events->add_flag("--json", c.events_a.json, "one JSON object per line");
  c.events->add_option("--last", c.events_a.last, "how many of the last events to print first")
      ->default_str("20")
      ->check(CLI::Range(0, 10000));
  auto* on = c.events->add_flag("--on", c.events_a.on, "turn the queue's events on");
  auto* off =
      c.events->add_flag("--off", c.events_a.off, "turn them off (and delete the events kept)");
  on->excludes(off);
  c.events->add_option("--max", c.events_a.max, "with --on: about this many events kept")
      ->default_str("10000")
      ->check(within(forq::queue::events_max_bounds))
      ->needs(on);
  c.events->add_flag("--create", c.create, create_help);
}

// forq schedule add | list | remove (docs/schedules.md).
void add_schedule_command(CLI::App& app, command_line& c) {
  c.schedule = app.add_subcommand(
      "schedule", "Recurring jobs of a queue: add (or change), list, pause, resume, run, "
                  "remove. Every worker's keeper runs them; each slot "
                  "is one job.");
  c.schedule->require_subcommand(1, 1);
  c.flags.add_to(*c.schedule, flag_set::which::connection);
  auto& a = c.sched;
  c.schedule_add = c.schedule->add_subcommand(
      "add", "Add a schedule, or change the one of that name (the same definition again changes "
             "nothing).");
  c.flags.add_to(*c.schedule_add, flag_set::which::connection);
  c.schedule_add->add_option("NAME", a.name, "the schedule's name in its queue")->required();
  c.schedule_add->add_option("PAYLOAD_JSON", a.payload, "the payload of each job (JSON)");
  c.schedule_add->add_option("--queue", a.queue, "queue name")->default_str("default");
  auto* cron = c.schedule_add->add_option(
      "--cron", a.cron, "cron expression: 5 fields, or 6 with seconds first; @hourly, ...");
  auto* every = c.schedule_add->add_option(
      "--every", a.every, "a fixed interval aligned to the clock: 30s, 5m, 1h, 1d (1s to 366d)");
  cron->excludes(every);
  c.schedule_add->add_option("--tz", a.tz, "the cron expression's time zone (IANA); default UTC");
  c.schedule_add->add_option("--handler", a.handler,
                             "handler of its jobs (none: the queue's default handler)");
  c.schedule_add->add_option("--priority", a.priority, "0 to 9, higher runs first")
      ->check(within(forq::queue::priority_bounds));
  c.schedule_add->add_option("--attempts", a.attempts, "attempts at most (1 to 1000)")
      ->check(within(forq::queue::attempts_bounds));
  c.schedule_add
      ->add_option("--missed", a.missed,
                   "slots that came due while nothing ran: skip, latest (the latest, if at most "
                   "--grace late) or all (at most 100)")
      ->default_str("latest")
      ->check(one_of({"skip", "latest", "all"}));
  c.schedule_add->add_option("--grace", a.grace, "how late --missed latest may run a slot")
      ->default_str("60s");
  c.schedule_add
      ->add_option("--overlap", a.overlap,
                   "a slot while the previous run is still queued or running: allow, skip, or "
                   "queue-one (run once when it finishes)")
      ->default_str("allow")
      ->check(one_of({"allow", "skip", "queue-one"}));
  c.schedule_add->add_option("--start", a.start,
                             "no slot before this time (RFC 3339, e.g. 2026-12-03T10:00:00Z)");
  c.schedule_add->add_option("--end", a.end, "no slot after this time (RFC 3339)");
  c.schedule_add->add_option("--limit", a.limit, "runs at most, then it ends (1 to 10^12)")
      ->check(CLI::Range(1LL, 1000000000000LL));
  c.schedule_list = c.schedule->add_subcommand(
      "list", "The queue's schedules: when, next and last run, runs, skipped, last job.");
  c.flags.add_to(*c.schedule_list, flag_set::which::connection);
  c.schedule_list->add_option("--queue", a.queue, "only this queue's (default: every queue's)");
  c.schedule_list->add_flag("--json", c.schedule_json, "one JSON array");
  for (auto [sub, name, help] :
       {std::tuple{&c.schedule_remove, "remove", "Remove a schedule."},
        std::tuple{&c.schedule_pause, "pause", "Pause a schedule: no slot runs until resume."},
        std::tuple{&c.schedule_resume, "resume",
                   "Resume a paused schedule from its next slot at least 5 s away."},
        std::tuple{&c.schedule_run, "run", "Run a schedule's job once now, besides its slots."}}) {
    *sub = c.schedule->add_subcommand(name, help);
    c.flags.add_to(**sub, flag_set::which::connection);
    (*sub)->add_option("NAME", a.name, "the schedule's name")->required();
    (*sub)->add_option("--queue", a.queue, "queue name")->default_str("default");
  }
}

void add_bench_command(CLI::App& app, command_line& c) {
  forq::bench::bench_args bench_a;
  c.bench = app.add_subcommand(
      "bench", "Run a workload end to end through forq serve's process model, measure it and "
               "verify every job ran once: drain (N jobs enqueued, then drained), steady (a "
               "producer at --rate for --duration), mixed (steady with mixed sizes, sleeps, "
               "failures and delays); or idle (what --queue-count queues with nothing to do cost "
               "Redis and the workers for --duration). Exit 1 if a job was lost or duplicated.");
  c.flags.add_to(*c.bench);
  c.bench->add_option("WORKLOAD", c.bench_a.workload, "drain, steady, mixed or idle")
      ->required()
      ->check(one_of({"drain", "steady", "mixed", "idle"}));
  c.bench->add_option("--queue-count", c.idle_a.queues, "idle: queues (1 to 10000)")
      ->default_str("10")
      ->check(within(forq::queue::bounds{"queue-count", 1, 10'000, ""}));
  c.bench
      ->add_option("--hosts", c.idle_a.hosts,
                   "idle: serve trees at once, as on that many hosts (1 to 16)")
      ->default_str("1")
      ->check(within(forq::queue::bounds{"hosts", 1, 16, ""}));
  c.bench->add_option("--jobs", c.bench_a.jobs, "drain: jobs to enqueue (1 to 100000000)")
      ->default_str("100000")
      ->check(within(forq::queue::bounds{"jobs", 1, 100'000'000, ""}));
  c.bench->add_option("--rate", c.bench_a.rate, "steady, mixed: jobs/s offered (1 to 10000000)")
      ->default_str("1000")
      ->check(within(1, 1e7, " jobs/s"));
  c.bench
      ->add_option("--duration", c.bench_a.duration_s,
                   "steady, mixed, idle: seconds (0.1 to 86400)")
      ->default_str("10")
      ->check(within(0.1, 86400, " s"));
  c.bench
      ->add_option("--payload-bytes", c.bench_a.payload_bytes,
                   "drain, steady: bytes of each job's payload (40 to 1048576)")
      ->default_str("100")
      ->check(within(forq::queue::bounds{"payload_bytes", 40, 1'048'576, " bytes"}));
  c.bench
      ->add_option("--repeat", c.bench_a.repeat, "runs, reported as median, min and max (1 to 100)")
      ->default_str("1")
      ->check(within(forq::queue::bounds{"repeat", 1, 100, ""}));
  c.bench->add_flag("--json", c.bench_a.json, "one JSON object on stdout instead of the table");
  c.bench->add_flag("--events", c.bench_a.events,
                    "drain, steady, mixed: with the queue's events on (forq events --on)");
}

// The command that was parsed, other than serve, or nothing for serve.
std::optional<int> run_command(command_line& c, const forq::config& cfg) {
  if (c.show_config->parsed()) {
    std::cout << forq::to_json(cfg) << '\n';
    return forq::exit_code::ok;
  }
  if (c.enqueue->parsed()) return forq::cli::enqueue(cfg, c.enq);
  if (c.queues->parsed()) return forq::cli::queues(cfg, c.queues_json);
  if (c.job->parsed()) return forq::cli::job(cfg, c.job_id, c.job_queue, c.job_json, c.job_wait);
  if (c.cancel->parsed())
    return forq::cli::cancel(cfg, c.job_id, c.job_queue, c.cancel_reason, c.job_json);
  if (c.dead->parsed()) return forq::cli::dead(cfg, c.dead_a);
  if (c.events->parsed()) {
    c.events_a.create = c.create;
    return forq::cli::events(cfg, c.events_a);
  }
  if (c.pause->parsed()) return forq::cli::pause(cfg, c.pause_queue, true, c.create);
  if (c.resume->parsed()) return forq::cli::pause(cfg, c.pause_queue, false, c.create);
  if (c.bench->parsed()) {
    if (c.bench_a.workload == "idle") {
      c.idle_a.duration_s = c.bench_a.duration_s;
      c.idle_a.json = c.bench_a.json;
      return forq::bench::idle(cfg, c.idle_a);
    }
    if (c.bench_a.workload != "drain" && c.bench_a.rate * c.bench_a.duration_s > 100000000.0)
      return usage_error("--rate x --duration is over 100000000 jobs");
    return forq::bench::bench(cfg, c.bench_a);
  }
  if (c.schedule_add->parsed()) {
    if (c.sched.cron.empty() && c.sched.every.empty())
      return usage_error("schedule add needs --cron EXPRESSION or --every DURATION");
    return forq::cli::schedule_add(cfg, c.sched);
  }
  if (c.schedule_list->parsed())
    return forq::cli::schedule_list(cfg,
                                    c.schedule_list->get_option("--queue")->count() > 0
                                        ? std::optional(c.sched.queue)
                                        : std::nullopt,
                                    c.schedule_json);
  for (auto* sub : {c.schedule_remove, c.schedule_pause, c.schedule_resume, c.schedule_run})
    if (sub->parsed())
      return forq::cli::schedule_act(cfg, sub->get_name(), c.sched.queue, c.sched.name);
  if (c.limit->parsed())
    return forq::cli::rate_limit(cfg, c.limit_queue,
                                 c.limit_max == "off" ? 0 : std::stoll(c.limit_max), c.limit_per_ms,
                                 c.create);
  return std::nullopt;
}

// The program's schedules (forq::run's) and the `schedules` setting's, as one JSON array in
// cfg.schedules_json; refused if one is not right or a name is in both.
std::optional<std::string>
add_program_schedules(forq::config& cfg, const std::optional<forq::schedule_list>& program) {
  if (!program) return std::nullopt;
  // A program that declares schedules (even none now) owns them: what it no longer declares is
  // removed, so the setting's reconciliation runs even when the setting is unset.
  if (program->empty()) {
    if (cfg.schedules_json.empty()) cfg.schedules_json = "[]";
    return std::nullopt;
  }
  const auto& declared = *program;
  namespace json = boost::json;
  json::array all;
  for (const auto& s : declared) {
    json::object o;
    o["queue"] = s.queue;
    o["name"] = s.name;
    if (!s.cron.empty()) o["cron"] = s.cron;
    if (s.every.count() != 0) o["every_ms"] = s.every.count();
    if (!s.tz.empty()) o["tz"] = s.tz;
    if (!s.handler.empty()) o["handler"] = s.handler;
    o["payload"] = s.payload;
    o["priority"] = s.priority;
    if (s.max_attempts) o["max_attempts"] = *s.max_attempts;
    o["missed"] = s.missed;
    o["grace_ms"] = s.grace.count();
    o["overlap"] = s.overlap;
    all.push_back(std::move(o));
  }
  if (auto checked = forq::schedule::from_json_list(json::serialize(all)); !checked)
    return "a schedule declared in the program: " + checked.error().message();
  if (!cfg.schedules_json.empty()) {
    const auto setting = json::parse(cfg.schedules_json);
    for (const auto& v : setting.as_array())
      all.push_back(v);
  }
  auto both = forq::schedule::from_json_list(json::serialize(all));
  if (!both)
    return "the program's schedules and the schedules setting together: " + both.error().message();
  cfg.schedules_json = json::serialize(all);
  return std::nullopt;
}

// The configuration from the same sources again, checked as at start-up (SIGHUP).
forq::expected<forq::config> load_again(const flag_set& flags,
                                        const forq::queue::handler_map& handlers,
                                        const std::optional<forq::schedule_list>& schedules) {
  auto again = forq::load_config(flags.sources(), forq::config_sources::process_env_names());
  if (!again) return again.error();
  if (auto bad = forq::worker::check_handlers(again->cfg, handlers))
    return forq::error(forq::errc::invalid_value, *bad);
  if (auto bad = add_program_schedules(again->cfg, schedules))
    return forq::error(forq::errc::invalid_value, *bad);
  return again->cfg;
}

} // namespace

namespace {
int run_program(int argc, char** argv, forq::handler_map handlers,
                std::optional<forq::schedule_list> schedules);
} // namespace

int forq::run(int argc, char** argv, handler_map handlers) {
  return run_program(argc, argv, std::move(handlers), std::nullopt);
}

int forq::run(int argc, char** argv, handler_map handlers, schedule_list schedules) {
  return run_program(argc, argv, std::move(handlers), std::move(schedules));
}

namespace {
// forq::run's body; `schedules`: the program's, if it declares them (even none).
int run_program(int argc, char** argv, forq::handler_map handlers,
                std::optional<forq::schedule_list> schedules) {
  forq::process::init_process_title(argc, argv); // before anything keeps pointers into argv
  CLI::App app{"forq runs background jobs out of Redis, on every core.", "forq"};
  app.set_version_flag("--version", "forq " FORQ_VERSION);
  app.require_subcommand(1, 1);
  app.footer("Precedence: flags > FORQ_* environment > --config file > defaults.\n"
             "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.\n"
             "Documentation: docs/ in the source tree (start with docs/architecture.md).");

  command_line c;
  c.flags.add_to(app);
  add_service_commands(app, c);
  add_enqueue_command(app, c);
  add_inspect_commands(app, c);
  add_control_commands(app, c);
  add_bench_command(app, c);
  add_schedule_command(app, c);
  const std::vector<std::string> command_names{"serve", "config", "enqueue",  "queues",
                                               "job",   "dead",   "pause",    "resume",
                                               "limit", "bench",  "schedule", "cancel"};

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(explain(e, argc, argv, command_names, app));
  }

  if (!c.serve->parsed() && !c.show_config->parsed() && !c.bench->parsed()) {
    if (auto name = c.flags.misplaced()) {
      const auto command = named_command(app, argc, argv).second;
      return usage_error(*name + " is a setting of forq serve; `" + command +
                         "` takes its own options and the connection settings (--redis, "
                         "--data-dir, ...) only: see `" +
                         command + " --help`");
    }
  }
  auto loaded = forq::load_config(c.flags.sources(), forq::config_sources::process_env_names());
  if (!loaded) return usage_error(loaded.error().message());
  auto& [cfg, warnings] = *loaded;
  if (auto bad = forq::worker::check_handlers(cfg, handlers)) return usage_error(*bad);
  if (auto bad = add_program_schedules(cfg, schedules)) return usage_error(*bad);

  // The short-lived commands say what matters on stdout/stderr; their logs start at warnings
  // unless a level below info was asked for.
  const bool serving = c.serve->parsed();
  auto level = cfg.log_lvl;
  if (!serving && level == forq::log_level::info) level = forq::log_level::warn;
  forq::init_logging(cfg.log_fmt, level, serving ? "master" : "cli");
  for (const auto& w : warnings)
    spdlog::warn("{}", w);

  for (const auto& [name, h] : forq::worker::worker_handlers(cfg, handlers))
    c.sched.known_handlers.push_back(name);
  for (const auto& q : cfg.queues)
    if (q.name == c.sched.queue) c.sched.default_handler = q.default_handler;
  if (auto code = run_command(c, cfg)) return *code;
  return forq::master::serve(
      cfg, [&] { return load_again(c.flags, handlers, schedules); }, handlers);
}
} // namespace
