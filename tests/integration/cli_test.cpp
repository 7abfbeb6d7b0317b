// The forq binary as an operator runs it: help, bad input (exit 2, one clear message, nothing
// left running), configuration precedence, and `forq serve` with its embedded Redis under real
// signals.
#include "config/config.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>

namespace {

namespace fs = std::filesystem;
using forq::test::child_process;
using forq::test::run;
using forq::test::temp_dir;
using namespace std::chrono_literals;

const std::string forq_bin = FORQ_BINARY;

boost::json::object effective_config(std::vector<std::string> args,
                                     std::vector<std::string> env = {}) {
  args.insert(args.begin(), {forq_bin, "config"});
  auto r = run(args, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return boost::json::parse(r.out).as_object();
}

TEST(cli, help_lists_every_option_with_its_default) {
  for (std::vector<std::string> args : {std::vector<std::string>{forq_bin, "--help"},
                                        std::vector<std::string>{forq_bin, "serve", "--help"}}) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 0);
    const forq::config defaults;
    for (const auto& f : forq::config_fields()) {
      auto shown = f.show(defaults);
      // A switch is a bare flag (off by default); the others show their value and default.
      auto listed = f.kind == forq::config_field::json_kind::boolean
                        ? f.flag + " "
                        : f.flag + " " + f.metavar + "=" + (shown.empty() ? "\"\"" : shown);
      EXPECT_NE(r.out.find(listed), std::string::npos)
          << f.flag << " missing or without its default in:\n"
          << r.out;
      EXPECT_NE(r.out.find(f.env), std::string::npos) << f.env;
    }
    EXPECT_NE(r.out.find("--config FILE"), std::string::npos);
  }
  auto top = run({forq_bin, "--help"});
  EXPECT_NE(top.out.find("serve"), std::string::npos);
  EXPECT_NE(top.out.find("config"), std::string::npos);
}

TEST(cli, bad_usage_exits_2_with_one_message) {
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& b : std::vector<bad>{
           {{}, "a command is required"},
           {{"bogus"}, "unknown command \"bogus\""},
           {{"serve", "--bogus"}, "--bogus"},
           {{"serve", "--workers"}, "--workers"},
           {{"serve", "--workers", "many"}, "invalid workers \"many\" (flag --workers)"},
           {{"serve", "--drain-timeout=-3"}, "invalid drain_timeout \"-3\" (flag --drain-timeout)"},
           {{"serve", "--log-format", "xml"}, "expected one of text|json"},
           {{"serve", "--config", "/nonexistent.json"},
            "cannot read config file /nonexistent.json"},
       }) {
    std::vector<std::string> argv{forq_bin};
    argv.insert(argv.end(), b.args.begin(), b.args.end());
    auto r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << b.says;
    EXPECT_NE(r.err.find(b.says), std::string::npos) << "expected \"" << b.says << "\" in:\n"
                                                     << r.err;
    EXPECT_NE(r.err.find("forq --help"), std::string::npos);
  }
}

// A command that talks to Redis takes its own options and the connection settings only: a worker
// setting given to it is refused (exit 2, before any Redis is reached), never silently applied
// to another queue than the one meant; its --help lists what it takes, its own options first.
TEST(cli, each_command_takes_its_own_options_and_the_connection_settings_only) {
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& b : std::vector<bad>{
           {{"dead", "list", "--queues", "emails"},
            "--queues is a setting of forq serve, not an option of forq dead; did you mean "
            "--queue?"},
           {{"dead", "purge", "--queues=emails"}, "not an option of forq dead"},
           {{"enqueue", "--queues", "emails", "{}"}, "not an option of forq enqueue"},
           {{"schedule", "remove", "x", "--workers", "2"},
            "--workers is a setting of forq serve, not an option of forq schedule remove"},
           {{"--queues", "emails", "dead", "purge"},
            "--queues is a setting of forq serve; `forq dead` takes its own options"},
           {{"job", "x", "--listen", "127.0.0.1:1"}, "not an option of forq job"},
       }) {
    std::vector<std::string> argv{forq_bin};
    argv.insert(argv.end(), b.args.begin(), b.args.end());
    auto r = run(argv, {"FORQ_REDIS_URL=redis://127.0.0.1:1"});
    EXPECT_EQ(r.exit_code, 2) << b.says << "\n" << r.err;
    EXPECT_NE(r.err.find(b.says), std::string::npos) << "expected \"" << b.says << "\" in:\n"
                                                     << r.err;
  }
  auto help = run({forq_bin, "schedule", "remove", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.find("--workers"), std::string::npos) << help.out;
  EXPECT_EQ(help.out.find("--listen"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--redis URL"), std::string::npos) << help.out;
  EXPECT_LT(help.out.find("--queue TEXT"), help.out.find("--redis URL")) << help.out;
  // The settings still go before `serve`, as configuration.md shows.
  auto before = run({forq_bin, "--workers", "3", "config"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(boost::json::parse(before.out).at("workers"), 3);
}

TEST(cli, bad_environment_and_config_files_exit_2) {
  temp_dir dir;
  forq::test::write_file(dir / "typo.json", R"({"wrokers": 2})");
  forq::test::write_file(dir / "broken.json", R"({"workers": )");
  auto r = run({forq_bin, "serve"}, {"FORQ_WORKERS=-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("(environment FORQ_WORKERS)"), std::string::npos) << r.err;
  r = run({forq_bin, "serve", "--config", (dir / "typo.json").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean \"workers\""), std::string::npos) << r.err;
  r = run({forq_bin, "serve"}, {"FORQ_CONFIG=" + (dir / "broken.json").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
}

TEST(cli, precedence_flags_over_env_over_file_both_flag_spellings) {
  temp_dir dir;
  forq::test::write_file(dir / "c.json",
                         R"({"workers": 3, "drain_timeout": 4, "log": {"level": "debug"}})");
  auto c = effective_config({"--config=" + (dir / "c.json").string(), "--workers=7"},
                            {"FORQ_WORKERS=5", "FORQ_DRAIN_TIMEOUT=6"});
  EXPECT_EQ(c.at("workers").as_int64(), 7);
  EXPECT_EQ(c.at("drain_timeout").as_int64(), 6);
  EXPECT_EQ(c.at("log").at("level").as_string(), "debug");
  // The option may also stand before the subcommand.
  auto r = run({forq_bin, "--workers", "9", "config"});
  EXPECT_EQ(boost::json::parse(r.out).at("workers").as_int64(), 9);
}

TEST(cli, secrets_are_never_printed) {
  auto r = run({forq_bin, "config", "--redis", "redis://app:hunter2@127.0.0.1:6379"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ((r.out + r.err).find("hunter2"), std::string::npos) << r.out;
  r = run({forq_bin, "serve", "--redis", "redis://app:hunter2@127.0.0.1:99999"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ((r.out + r.err).find("hunter2"), std::string::npos) << r.err;
}

TEST(cli, missing_redis_server_exits_2_naming_the_package) {
  temp_dir dir;
  auto r = run({forq_bin, "serve", "--data-dir", (dir / "d").string()}, {"PATH=/nonexistent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("redis-server not found on PATH"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("apt-get install redis-server"), std::string::npos) << r.err;
}

TEST(cli, unwritable_data_directory_exits_2) {
  temp_dir dir;
  forq::test::write_file(dir / "f", "");
  auto r = run({forq_bin, "serve", "--data-dir", (dir / "f" / "d").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot create data directory"), std::string::npos) << r.err;
}

pid_t redis_pid_of(const fs::path& data_dir) {
  std::ifstream in(data_dir / "redis.pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

class serve_test : public ::testing::Test {
 protected:
  temp_dir dir_;
  fs::path data_ = dir_ / "data";

  std::unique_ptr<child_process> start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{forq_bin,       "serve",    "--data-dir",
                                  data_.string(), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<child_process>(argv);
    EXPECT_TRUE(p->wait_for_err("master ready")) << p->err();
    return p;
  }
};

TEST_F(serve_test, runs_the_embedded_redis_and_stops_cleanly_on_sigterm_and_sigint) {
  for (int sig : {SIGTERM, SIGINT}) {
    auto forq = start();
    pid_t redis = redis_pid_of(data_);
    ASSERT_GT(redis, 0);
    EXPECT_TRUE(forq::test::ping_unix((data_ / "redis.sock").string()));

    forq->signal(sig);
    auto status = forq->wait_for(20s);
    ASSERT_TRUE(status) << "forq did not stop on signal " << sig;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << forq->err();
    EXPECT_TRUE(forq::test::process_gone(redis)) << "redis-server outlived forq";
    EXPECT_FALSE(fs::exists(data_ / "redis.sock"));
    EXPECT_NE(forq->err().find("embedded redis-server (pid " + std::to_string(redis) +
                               ") stopped (exit status 0)"),
              std::string::npos)
        << forq->err();
  }
}

TEST_F(serve_test, redis_does_not_outlive_a_killed_forq_and_the_next_start_cleans_up) {
  auto forq = start();
  pid_t redis = redis_pid_of(data_);
  ASSERT_GT(redis, 0);
  forq->signal(SIGKILL);
  forq->wait_for(5s);
  EXPECT_TRUE(forq::test::wait_process_gone(redis, 10s)) << "redis-server outlived a killed forq";

  auto again = start(); // whatever was left behind does not stop the next run
  EXPECT_TRUE(forq::test::ping_unix((data_ / "redis.sock").string()));
}

TEST_F(serve_test, a_second_serve_on_the_same_data_directory_is_refused) {
  auto first = start();
  auto r = run({forq_bin, "serve", "--data-dir", data_.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("in use by another forq serve (pid " + std::to_string(first->pid()) + ")"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(first->running());
}

TEST_F(serve_test, restarts_its_redis_server_when_it_dies) {
  auto forq = start();
  pid_t redis = redis_pid_of(data_);
  ::kill(redis, SIGKILL);
  EXPECT_TRUE(forq->wait_for_err("embedded redis-server exited (killed by SIGKILL); restarting"));
  EXPECT_TRUE(forq->wait_for_err("ready on unix://", 15s));
  for (int i = 0; i < 500 && redis_pid_of(data_) == redis; ++i)
    std::this_thread::sleep_for(10ms);
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i, std::this_thread::sleep_for(10ms))
    up = forq::test::ping_unix((data_ / "redis.sock").string());
  EXPECT_TRUE(up) << forq->err();
  EXPECT_TRUE(forq->running());
}

TEST_F(serve_test, json_logs_are_one_object_per_line_with_role_and_pid) {
  auto forq = start({"--log-format", "json"});
  forq->signal(SIGTERM);
  ASSERT_TRUE(forq->wait_for(20s));
  std::stringstream lines(forq->err());
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    auto obj = boost::json::parse(line).as_object();
    std::string role(obj.at("role").as_string());
    // The master logs as "master" with its pid; each worker as "worker N" with its own.
    if (role == "master")
      EXPECT_EQ(obj.at("pid").as_int64(), forq->pid());
    else
      EXPECT_TRUE(role.starts_with("worker ") && obj.at("pid").as_int64() != forq->pid()) << line;
  }
  EXPECT_GE(count, 4);
}

} // namespace
