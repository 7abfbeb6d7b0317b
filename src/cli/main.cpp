// The forq command: parses flags, loads and validates the configuration once, sets up logging,
// then hands over to one subcommand. Every usage or configuration error ends here with one
// message on stderr and exit code 2.
#include "commands.hpp"
#include "forq/config.hpp"
#include "forq/exit_codes.hpp"
#include "forq/log.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace {

// Every configuration field becomes a flag on the top-level command and on each subcommand, so
// both `forq --workers 4 serve` and `forq serve --workers 4` work and both --help pages list
// every option with its default.
struct flag_set {
  std::string config_file;
  std::map<std::string, std::string> values; // by field key
  std::vector<std::pair<CLI::Option*, std::string>> options;

  void add_to(CLI::App& app) {
    app.add_option("--config", config_file,
                   "JSON configuration file; flags override environment overrides file "
                   "(env FORQ_CONFIG)")
        ->type_name("FILE");
    const forq::config defaults;
    for (const auto& f : forq::config_fields()) {
      auto* opt = app.add_option(f.flag, values[f.key],
                                 f.help + " (env " + f.env + ", file key " + f.key + ")");
      opt->type_name(f.metavar);
      auto shown = f.show(defaults);
      opt->default_str(shown.empty() ? "\"\"" : shown);
      options.emplace_back(opt, f.key);
    }
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

// CLI11 reports a mistyped command as a missing one; find the word the user typed instead.
std::string explain(const CLI::ParseError& e, int argc, char** argv,
                    const std::vector<std::string>& commands) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("-")) {
      bool takes_value = arg.starts_with("--") && arg.find('=') == std::string_view::npos &&
                         arg != "--help" && arg != "--version";
      if (takes_value) ++i;
      continue;
    }
    if (std::find(commands.begin(), commands.end(), arg) != commands.end()) return e.what();
    return "unknown command \"" + std::string(arg) + "\"; the commands are: serve, config";
  }
  return "a command is required: serve or config";
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "forq: %s\nRun 'forq --help' for the commands and options.\n",
               message.c_str());
  return forq::exit_code::fatal;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"forq runs background jobs out of Redis, on every core.", "forq"};
  app.set_version_flag("--version", "forq " FORQ_VERSION);
  app.require_subcommand(1, 1);
  app.footer("Precedence: flags > FORQ_* environment > --config file > defaults.\n"
             "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.\n"
             "Documentation: docs/ in the source tree (start with docs/architecture.md).");

  flag_set flags;
  flags.add_to(app);

  auto* serve = app.add_subcommand(
      "serve", "Run the service: start the embedded Redis (unless --redis is given), supervise, "
               "and stop cleanly on SIGINT or SIGTERM.");
  flags.add_to(*serve);
  auto* show_config = app.add_subcommand(
      "config", "Print the effective configuration as JSON (secrets redacted) and exit; exit "
                "code 2 if it is invalid.");
  flags.add_to(*show_config);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(explain(e, argc, argv, {"serve", "config"}));
  }

  auto loaded = forq::load_config(flags.sources(), forq::config_sources::process_env_names());
  if (auto* err = std::get_if<forq::config_error>(&loaded)) return usage_error(err->message);
  auto& [cfg, warnings] = std::get<forq::loaded_config>(loaded);

  forq::init_logging(cfg.log_fmt, cfg.log_lvl, serve->parsed() ? "master" : "cli");
  for (const auto& w : warnings)
    spdlog::warn("{}", w);

  if (show_config->parsed()) {
    std::cout << forq::to_json(cfg) << '\n';
    return forq::exit_code::ok;
  }
  return forq::cli::serve(cfg);
}
