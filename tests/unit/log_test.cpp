#include "log.hpp"
#include "utf8.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <unistd.h>

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);)
    out.push_back(line);
  return out;
}

class log_test : public ::testing::Test {
 protected:
  std::ostringstream out_;
  void init(forq::log_format f, forq::log_level l, std::string role) {
    forq::init_logging(f, l, std::move(role),
                       std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
  }
  void TearDown() override { forq::init_logging(forq::log_format::text, forq::log_level::info); }
};

TEST_F(log_test, json_lines_carry_role_pid_level_and_escaped_message) {
  init(forq::log_format::json, forq::log_level::info, "master");
  spdlog::info("job \"{}\" done\nnext line\ttab", "a\\b");
  forq::set_log_role("worker 3");
  spdlog::warn("unicode é ✓");
  spdlog::debug("below the level: dropped");
  spdlog::default_logger()->flush();

  auto got = lines(out_.str());
  ASSERT_EQ(got.size(), 2u) << out_.str();
  auto first = boost::json::parse(got[0]).as_object();
  EXPECT_EQ(first.at("level").as_string(), "info");
  EXPECT_EQ(first.at("role").as_string(), "master");
  EXPECT_EQ(first.at("pid").as_int64(), ::getpid());
  EXPECT_EQ(first.at("msg").as_string(), "job \"a\\b\" done\nnext line\ttab");
  auto time = std::string(first.at("time").as_string());
  EXPECT_EQ(time.size(), 24u) << time; // 2026-11-23T17:52:07.123Z
  EXPECT_EQ(time.back(), 'Z');

  auto second = boost::json::parse(got[1]).as_object();
  EXPECT_EQ(second.at("level").as_string(), "warn");
  EXPECT_EQ(second.at("role").as_string(), "worker 3");
  EXPECT_EQ(second.at("msg").as_string(), "unicode é ✓");
}

// A message quoting bytes that are not UTF-8 (a foreign job's field) is still one line of JSON.
TEST_F(log_test, json_lines_stay_json_whatever_bytes_a_message_quotes) {
  init(forq::log_format::json, forq::log_level::info, "worker 1");
  spdlog::warn("job of queue q is dead: unknown handler \"{}\"", "\xfe\xff");
  spdlog::default_logger()->flush();
  auto got = lines(out_.str());
  ASSERT_EQ(got.size(), 1u);
  boost::system::error_code ec;
  auto v = boost::json::parse(got[0], ec); // refuses text that is not UTF-8
  ASSERT_FALSE(ec) << got[0];
  EXPECT_EQ(v.as_object().at("msg").as_string(),
            "job of queue q is dead: unknown handler \"\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST_F(log_test, a_structured_value_is_a_field_of_the_json_line_and_follows_the_text_one) {
  init(forq::log_format::json, forq::log_level::info, "master");
  forq::log_info_with("serve starting", "config", R"({"workers":2,"queues":"a,b"})");
  spdlog::info("the next line has no field");
  init(forq::log_format::text, forq::log_level::info, "master");
  forq::log_info_with("serve starting", "config", R"({"workers":2})");
  spdlog::default_logger()->flush();
  auto got = lines(out_.str());
  ASSERT_EQ(got.size(), 3u) << out_.str();
  auto first = boost::json::parse(got[0]).as_object();
  EXPECT_EQ(first.at("msg").as_string(), "serve starting");
  EXPECT_EQ(first.at("config").at("workers"), 2); // an object, not an escaped string
  EXPECT_FALSE(boost::json::parse(got[1]).as_object().contains("config"));
  EXPECT_TRUE(got[2].ends_with(R"(] serve starting config={"workers":2})")) << got[2];
}

TEST_F(log_test, text_lines_carry_role_and_pid) {
  init(forq::log_format::text, forq::log_level::debug, "master");
  spdlog::debug("hello {}", 42);
  spdlog::default_logger()->flush();
  auto got = lines(out_.str());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find(" debug [master " + std::to_string(::getpid()) + "] hello 42"),
            std::string::npos)
      << got[0];
  EXPECT_EQ(got[0][10], 'T') << got[0];
}

// A job's id or a handler's error quoted in a text line cannot send a terminal escape or forge
// a second line: control characters and bytes that are not UTF-8 are written as escapes.
TEST_F(log_test, text_lines_escape_what_a_job_could_smuggle_in) {
  init(forq::log_format::text, forq::log_level::info, "worker 1");
  spdlog::warn("job {} failed: {}", "x\x1b[2J",
               "line one\n2026-01-01T00:00:00.000Z info  forged\t\xc2\x9b\xff \\n");
  spdlog::default_logger()->flush();
  auto got = lines(out_.str());
  ASSERT_EQ(got.size(), 1u) << out_.str();
  EXPECT_NE(
      got[0].find(
          R"(job x\x1b[2J failed: line one\n2026-01-01T00:00:00.000Z info  forged\t\u009b\xff \\n)"),
      std::string::npos)
      << got[0];
  EXPECT_EQ(forq::printable("caf\xc3\xa9 ok"), "caf\xc3\xa9 ok"); // other text unchanged
}

TEST_F(log_test, level_off_drops_everything) {
  init(forq::log_format::text, forq::log_level::off, "master");
  spdlog::critical("nothing");
  spdlog::default_logger()->flush();
  EXPECT_EQ(out_.str(), "");
}

} // namespace
