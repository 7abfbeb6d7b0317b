#include "config/config.hpp"
#include "support/process.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace {

using forq::config;
using forq::config_sources;
using forq::loaded_config;
using forq::test::temp_dir;
using forq::test::write_file;
using namespace std::chrono_literals;

struct sources_builder {
  std::map<std::string, std::string> env;
  config_sources s;

  sources_builder() {
    s.env = [this](const std::string& n) -> std::optional<std::string> {
      auto it = env.find(n);
      return it == env.end() ? std::nullopt : std::optional(it->second);
    };
  }
};

config load_ok(const config_sources& s) {
  auto r = forq::load_config(s);
  if (!r) ADD_FAILURE() << "unexpected error: " << r.error().message();
  return r ? r->cfg : config{};
}

std::string load_error(const config_sources& s) {
  auto r = forq::load_config(s);
  if (!r) {
    EXPECT_EQ(r.error(), forq::errc::invalid_value);
    return r.error().message();
  }
  ADD_FAILURE() << "expected an error, got a valid config: " << forq::to_json(r->cfg);
  return {};
}

TEST(config, defaults_are_documented_values) {
  sources_builder b;
  auto c = load_ok(b.s);
  EXPECT_EQ(c.redis_url, "");
  EXPECT_EQ(c.redis_aof, forq::aof_policy::everysec);
  EXPECT_EQ(c.workers, 0u);
  EXPECT_GE(c.effective_workers(), 1u);
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 7600);
  EXPECT_EQ(c.data_dir, ".forq");
  EXPECT_EQ(c.drain_timeout, 30s);
  EXPECT_EQ(c.redis_timeout, 5s);
  EXPECT_EQ(c.log_fmt, forq::log_format::text);
  EXPECT_EQ(c.log_lvl, forq::log_level::info);
}

TEST(config, flags_beat_env_beat_file_beat_defaults) {
  temp_dir dir;
  write_file(dir / "forq.json", R"({"workers": 3, "drain_timeout": 7, "listen": "127.0.0.1:9000",
    "log": {"level": "debug"}, "redis": {"aof": "always"}})");
  sources_builder b;
  b.s.config_file = (dir / "forq.json").string();
  b.env = {{"FORQ_WORKERS", "5"}, {"FORQ_DRAIN_TIMEOUT", "8"}};
  b.s.flags = {{"workers", "7"}};

  auto c = load_ok(b.s);
  EXPECT_EQ(c.workers, 7u);       // flag over env and file
  EXPECT_EQ(c.drain_timeout, 8s); // env over file
  EXPECT_EQ(c.listen.port, 9000); // file over default
  EXPECT_EQ(c.log_lvl, forq::log_level::debug);
  EXPECT_EQ(c.redis_aof, forq::aof_policy::always);
  EXPECT_EQ(c.data_dir, ".forq"); // default where nobody says otherwise
}

TEST(config, config_file_comes_from_env_unless_flag_names_one) {
  temp_dir dir;
  write_file(dir / "a.json", R"({"workers": 1})");
  write_file(dir / "b.json", R"({"workers": 2})");
  sources_builder b;
  b.env = {{"FORQ_CONFIG", (dir / "a.json").string()}};
  EXPECT_EQ(load_ok(b.s).workers, 1u);
  b.s.config_file = (dir / "b.json").string();
  EXPECT_EQ(load_ok(b.s).workers, 2u);
}

TEST(config, every_field_is_reachable_from_every_source) {
  for (const auto& f : forq::config_fields()) {
    SCOPED_TRACE(f.key);
    EXPECT_TRUE(f.env.starts_with("FORQ_"));
    EXPECT_TRUE(f.flag.starts_with("--"));
    EXPECT_FALSE(f.help.empty());
    // A switch is a bare flag: no value to name.
    EXPECT_EQ(f.metavar.empty(), f.kind == forq::config_field::json_kind::boolean);
  }
  // The names other issues and scripts rely on.
  std::map<std::string, std::pair<std::string, std::string>> expected{
      {"redis.url", {"FORQ_REDIS_URL", "--redis"}},
      {"workers", {"FORQ_WORKERS", "--workers"}},
      {"listen", {"FORQ_LISTEN", "--listen"}},
      {"data_dir", {"FORQ_DATA_DIR", "--data-dir"}},
      {"drain_timeout", {"FORQ_DRAIN_TIMEOUT", "--drain-timeout"}},
      {"log.format", {"FORQ_LOG_FORMAT", "--log-format"}},
      {"log.level", {"FORQ_LOG_LEVEL", "--log-level"}}};
  for (const auto& [key, names] : expected) {
    auto it = std::find_if(forq::config_fields().begin(), forq::config_fields().end(),
                           [&](const auto& f) { return f.key == key; });
    ASSERT_NE(it, forq::config_fields().end()) << key;
    EXPECT_EQ(it->env, names.first);
    EXPECT_EQ(it->flag, names.second);
  }
}

TEST(config, accepted_values) {
  sources_builder b;
  b.s.flags = {{"redis.url", "rediss://u:p@redis.internal:6380/2"},
               {"workers", "1024"},
               {"listen", "[::1]:0"},
               {"data_dir", "/var/lib/forq"},
               {"drain_timeout", "2.5"},
               {"log.format", "json"},
               {"log.level", "off"},
               {"redis.aof", "off"},
               {"redis.timeout", "0.25"}};
  auto c = load_ok(b.s);
  EXPECT_EQ(c.redis_timeout, 250ms);
  EXPECT_EQ(c.workers, 1024u);
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.drain_timeout, 2500ms);
  EXPECT_EQ(c.log_fmt, forq::log_format::json);
  EXPECT_EQ(c.log_lvl, forq::log_level::off);
  EXPECT_EQ(c.redis_aof, forq::aof_policy::off);

  b.s.flags = {{"listen", "localhost:80"}, {"drain_timeout", "0"}};
  c = load_ok(b.s);
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.drain_timeout, 0ms);
}

TEST(config, queues_take_a_weight_and_a_default_handler) {
  sources_builder b;
  b.s.flags = {{"queues", "emails:3=send_email,reports,a.b=x.y:z"}};
  auto c = load_ok(b.s);
  ASSERT_EQ(c.queues.size(), 3u);
  EXPECT_EQ(c.queues[0].name, "emails");
  EXPECT_EQ(c.queues[0].weight, 3u);
  EXPECT_EQ(c.queues[0].default_handler, "send_email");
  EXPECT_EQ(c.queues[1].name, "reports");
  EXPECT_EQ(c.queues[1].default_handler, "");
  EXPECT_EQ(c.queues[2].name, "a.b");
  EXPECT_EQ(c.queues[2].default_handler, "x.y:z");
  // Shown the way it is written.
  EXPECT_NE(forq::to_json(c).find("\"emails:3=send_email,reports,a.b=x.y:z\""), std::string::npos)
      << forq::to_json(c);
}

struct bad_value {
  std::string key, value, allowed_fragment;
};

class config_rejects : public ::testing::TestWithParam<bad_value> {};

// Every field's validation, through each source: one message naming the source, the field, the
// value, and what is allowed.
TEST_P(config_rejects, with_a_message_naming_field_value_and_what_is_allowed) {
  const auto& bad = GetParam();
  const auto& fields = forq::config_fields();
  auto f =
      std::find_if(fields.begin(), fields.end(), [&](const auto& x) { return x.key == bad.key; });
  ASSERT_NE(f, fields.end());

  sources_builder by_flag;
  by_flag.s.flags[bad.key] = bad.value;
  auto msg = load_error(by_flag.s);
  EXPECT_NE(msg.find(bad.key), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"" + bad.value + "\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("flag " + f->flag), std::string::npos) << msg;
  EXPECT_NE(msg.find(bad.allowed_fragment), std::string::npos) << msg;

  if (!bad.value.empty()) { // an empty variable counts as unset
    sources_builder by_env;
    by_env.env[f->env] = bad.value;
    msg = load_error(by_env.s);
    EXPECT_NE(msg.find("environment " + f->env), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad.allowed_fragment), std::string::npos) << msg;
  }

  if (f->kind == forq::config_field::json_kind::string) {
    temp_dir dir;
    boost::json::object inner{{f->key.substr(f->key.find('.') + 1), bad.value}};
    boost::json::object root;
    if (auto dot = f->key.find('.'); dot != std::string::npos)
      root[f->key.substr(0, dot)] = inner;
    else
      root[f->key] = bad.value;
    write_file(dir / "c.json", boost::json::serialize(root));
    sources_builder by_file;
    by_file.s.config_file = (dir / "c.json").string();
    msg = load_error(by_file.s);
    EXPECT_NE(msg.find("config file"), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad.allowed_fragment), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(
    every_field, config_rejects,
    ::testing::Values(bad_value{"workers", "abc", "integer from 0 to 1024"},
                      bad_value{"workers", "-1", "integer from 0 to 1024"},
                      bad_value{"workers", "1025", "integer from 0 to 1024"},
                      bad_value{"workers", "2.5", "integer from 0 to 1024"},
                      bad_value{"workers", "", "integer from 0 to 1024"},
                      bad_value{"drain_timeout", "-1", "seconds from 0 to 86400"},
                      bad_value{"drain_timeout", "ten", "seconds from 0 to 86400"},
                      bad_value{"drain_timeout", "1e9", "seconds from 0 to 86400"},
                      bad_value{"drain_timeout", "nan", "seconds from 0 to 86400"},
                      bad_value{"drain_timeout", "86401", "seconds from 0 to 86400"},
                      bad_value{"listen", "7600", "HOST:PORT"},
                      bad_value{"listen", "127.0.0.1:65536", "HOST:PORT"},
                      bad_value{"listen", "example.com:80", "HOST:PORT"},
                      bad_value{"listen", "::1:80", "HOST:PORT"},
                      bad_value{"listen", "[::1]80", "HOST:PORT"},
                      bad_value{"listen", "127.0.0.1:", "HOST:PORT"},
                      bad_value{"data_dir", "", "non-empty path"},
                      bad_value{"queues", "emails=", "default handler of queue \"emails\""},
                      bad_value{"queues", "emails=a b", "1 to 128 characters"},
                      bad_value{"queues", "emails:0=x", "whole number from 1 to 1000"},
                      bad_value{"log.format", "xml", "text|json"},
                      bad_value{"log.level", "verbose", "trace|debug|info|warn|error|critical|off"},
                      bad_value{"redis.aof", "sometimes", "everysec|always|no|off"},
                      bad_value{"redis.timeout", "0.05", "seconds from 0.1 to 300"},
                      bad_value{"redis.timeout", "0", "seconds from 0.1 to 300"},
                      bad_value{"redis.timeout", "301", "seconds from 0.1 to 300"},
                      bad_value{"redis.timeout", "soon", "seconds from 0.1 to 300"},
                      bad_value{"redis.url", "http://localhost", "unknown scheme"},
                      bad_value{"redis.url", "redis://localhost:99999", "1 to 65535"},
                      bad_value{"redis.url", "redis://", "missing host"},
                      bad_value{"redis.url", "unix://relative/path", "absolute path"},
                      bad_value{"redis.url", "redis://h/x", "database number"},
                      bad_value{"redis.url", "not a url", "not a URL"},
                      bad_value{"redis.url", "redis-sentinel://s1:26379", "names the primary"},
                      bad_value{"redis.url", "redis-cluster://h:7000/2", "database 0 only"},
                      bad_value{"redis.durability", "sync", "async or replicated:N"},
                      bad_value{"redis.durability", "replicated:0", "N from 1 to 100"},
                      bad_value{"redis.durability", "replicated:1:0", "TIMEOUT_MS"},
                      bad_value{"redis.durability", "replicated:2:60001", "TIMEOUT_MS"},
                      bad_value{"redis.durability", "replicated:x", "async or replicated:N"}));

TEST(config, durability_and_the_sentinel_password) {
  sources_builder b;
  auto c = load_ok(b.s);
  EXPECT_EQ(c.redis_wait_replicas, 0); // async by default
  b.s.flags = {{"redis.url", "redis-sentinel://a:26379,b:26380/jobs"},
               {"redis.durability", "replicated:2"},
               {"redis.sentinel_password", "s3cret"}};
  c = load_ok(b.s);
  EXPECT_EQ(c.redis_wait_replicas, 2);
  EXPECT_EQ(c.redis_wait_timeout, 1000ms);
  EXPECT_EQ(c.redis_sentinel_password, "s3cret");
  b.s.flags = {{"redis.durability", "replicated:1:250"}};
  c = load_ok(b.s);
  EXPECT_EQ(c.redis_wait_replicas, 1);
  EXPECT_EQ(c.redis_wait_timeout, 250ms);
  auto shown = boost::json::parse(forq::to_json(c));
  EXPECT_EQ(shown.at("redis").at("durability"), "replicated:1:250");
  b.s.flags = {{"redis.sentinel_password", "s3cret"}};
  shown = boost::json::parse(forq::to_json(load_ok(b.s)));
  EXPECT_EQ(shown.at("redis").at("sentinel_password"), "***");
}

TEST(config, a_rejected_url_never_shows_its_password) {
  sources_builder b;
  b.s.flags["redis.url"] = "redis://admin:hunter2@localhost:99999";
  auto msg = load_error(b.s);
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("admin:***@"), std::string::npos) << msg;

  b.s.flags["redis.url"] = "redis://admin:hunter2@localhost:6379";
  auto json = forq::to_json(load_ok(b.s));
  EXPECT_EQ(json.find("hunter2"), std::string::npos) << json;
}

TEST(config, an_empty_environment_variable_counts_as_unset) {
  sources_builder b;
  b.env = {{"FORQ_WORKERS", ""}, {"FORQ_REDIS_URL", ""}};
  auto c = load_ok(b.s);
  EXPECT_EQ(c.workers, 0u);
}

TEST(config, unknown_forq_variables_are_warned_about) {
  sources_builder b;
  auto r = forq::load_config(b.s, {"FORQ_WORKER", "FORQ_WORKERS", "FORQ_JOB_ID", "FORQ_CONFIG"});
  ASSERT_TRUE(r) << r.error().message();
  auto& warnings = r->warnings;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("FORQ_WORKER"), std::string::npos);
}

struct bad_file {
  std::string content, fragment;
};

class config_file_rejects : public ::testing::TestWithParam<bad_file> {};

TEST_P(config_file_rejects, with_a_clear_message) {
  temp_dir dir;
  write_file(dir / "c.json", GetParam().content);
  sources_builder b;
  b.s.config_file = (dir / "c.json").string();
  auto msg = load_error(b.s);
  EXPECT_NE(msg.find(GetParam().fragment), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir / "c.json").string()), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    malformed, config_file_rejects,
    ::testing::Values(
        bad_file{R"({"wrokers": 2})", "unknown key \"wrokers\"; did you mean \"workers\"?"},
        bad_file{R"({"redis": {"uri": "redis://x"}})", "unknown key \"redis.uri\""},
        bad_file{R"({"frobnicate": true})", "known keys: redis.url"},
        bad_file{R"({"redis.url": "redis://h"})", "has a dot; nest it instead"},
        bad_file{R"({"workers": "4"})", "workers must be a number"},
        bad_file{R"({"workers": 2.5})", "whole number"},
        bad_file{R"({"listen": 7600})", "listen must be a string"},
        bad_file{R"({"workers": null})", "workers must be a number"},
        bad_file{R"({"workers": [1]})", "workers must be a number"},
        bad_file{R"({"redis": "redis://x"})", "\"redis\" must be an object"},
        bad_file{R"({"workers": 2,})", "not valid JSON at 1:15"},
        bad_file{"{\"workers\": 2,\n \"workers\": 4}",
                 "key \"workers\" is given twice (again on line 2); keep one"},
        bad_file{R"({"redis": {"url": "redis://a"}, "log": {}, "redis": {}})",
                 "key \"redis\" is given twice"},
        bad_file{R"({"redis": {"url": "redis://a", "url": "redis://b"}})",
                 "key \"redis.url\" is given twice"},
        bad_file{R"({"handlers": {"a": {"exec": ["x"], "timeout": 1, "timeout": 2}}})",
                 "key \"handlers.a.timeout\" is given twice"},
        bad_file{"{\n  \"workers\": 2\n  \"listen\": 1\n}", "not valid JSON at 3:3"},
        bad_file{R"({"workers": 2} x)", "not valid JSON"}, bad_file{"", "not valid JSON"},
        bad_file{R"([1, 2])", "must hold a JSON object"}));

TEST(config, a_handler_given_twice_in_the_handlers_flag_is_refused) {
  sources_builder b;
  b.s.flags["handlers"] = R"({"a": {"exec": ["x"]}, "a": {"exec": ["y"]}})";
  auto msg = load_error(b.s);
  EXPECT_NE(msg.find("\"a\" is given twice; keep one"), std::string::npos) << msg;
  // The same key in two different objects is no repetition.
  b.s.flags["handlers"] = R"({"a": {"exec": ["x"]}, "b": {"exec": ["x"]}})";
  EXPECT_EQ(load_ok(b.s).handlers.size(), 2u);
}

// Item 4 of issue 17: retry_exit_code means something to exec handlers only; an http handler
// neither shows nor takes it.
TEST(config, an_http_handler_has_no_retry_exit_code) {
  sources_builder b;
  b.s.flags["handlers"] =
      R"({"app": {"http": "http://127.0.0.1:9/jobs"}, "cmd": {"exec": ["/bin/true"]}})";
  auto shown = boost::json::parse(forq::to_json(load_ok(b.s))).at("handlers");
  EXPECT_FALSE(shown.at("app").as_object().contains("retry_exit_code")) << shown;
  EXPECT_EQ(shown.at("cmd").at("retry_exit_code"), 75) << shown;
  b.s.flags["handlers"] = R"({"app": {"http": "http://127.0.0.1:9/jobs", "retry_exit_code": 3}})";
  auto msg = load_error(b.s);
  EXPECT_NE(msg.find("retry_exit_code is for exec handlers"), std::string::npos) << msg;
}

TEST(config, an_unreadable_config_file_is_an_error) {
  sources_builder b;
  b.s.config_file = "/nonexistent/forq.json";
  auto msg = load_error(b.s);
  EXPECT_NE(msg.find("cannot read config file /nonexistent/forq.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(config, to_json_round_trips_through_a_config_file) {
  sources_builder b;
  b.s.flags = {
      {"workers", "3"}, {"drain_timeout", "1.5"}, {"listen", "[::1]:81"}, {"log.format", "json"}};
  auto c = load_ok(b.s);
  temp_dir dir;
  write_file(dir / "c.json", forq::to_json(c));
  sources_builder again;
  again.s.config_file = (dir / "c.json").string();
  auto d = load_ok(again.s);
  EXPECT_EQ(forq::to_json(c), forq::to_json(d));
  EXPECT_EQ(d.workers, 3u);
  EXPECT_EQ(d.drain_timeout, 1500ms);
}

} // namespace
