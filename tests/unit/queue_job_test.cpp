// The consumer's decisions and its one conversion from a stream entry to a job, no sockets.
#include "forq/queue/job.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace {

using namespace forq::queue;
using forq::redis::reply;
using namespace std::chrono_literals;

reply entry(std::string id, std::vector<std::string> kv) {
  std::vector<reply> fields;
  for (auto& s : kv)
    fields.push_back(reply::make_string(s));
  return reply::make_array(
      {reply::make_string(std::move(id)), reply::make_array(std::move(fields))});
}

TEST(queue_job, a_first_attempt_takes_its_entry_id_as_job_id) {
  auto r = parse_entry("q", "forq:{q}:stream", 0,
                       entry("1-0", {"handler", "send", "payload", "{\"a\":1}"}));
  auto* j = std::get_if<delivered_job>(&r);
  ASSERT_TRUE(j) << std::get<std::string>(r);
  EXPECT_EQ(j->id, "1-0");
  EXPECT_EQ(j->handler, "send");
  EXPECT_EQ(j->attempt, 0);
}

TEST(queue_job, a_retry_keeps_its_id_and_counts_attempts) {
  auto r = parse_entry("q", "s", 0,
                       entry("9-0", {"id", "1-0", "handler", "h", "payload", "{}", "attempt", "2",
                                     "max_attempts", "5"}));
  auto* j = std::get_if<delivered_job>(&r);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->id, "1-0");
  EXPECT_EQ(j->attempt, 2);
  EXPECT_EQ(j->max_attempts, 5);
  auto json = boost::json::parse(to_json(*j, 3, {{"last_error", "boom"}})).as_object();
  EXPECT_EQ(json.at("id").as_string(), "1-0");
  EXPECT_EQ(json.at("attempt").as_string(), "3");
  EXPECT_EQ(json.at("last_error").as_string(), "boom");
  EXPECT_EQ(json.at("handler").as_string(), "h");
}

TEST(queue_job, malformed_entries_say_why) {
  auto why = [](reply e) {
    auto r = parse_entry("q", "s", 0, e);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r)
                                                  : std::string("parsed");
  };
  // No handler field is not malformed: the queue's default handler runs it (or it is dead).
  EXPECT_EQ(why(entry("1-0", {"payload", "{}"})), "parsed");
  EXPECT_NE(why(entry("1-0", {"handler", "h", "payload", "{oops"})).find("payload is not JSON"),
            std::string::npos);
  EXPECT_NE(why(entry("1-0", {"handler", "h"})).find("no payload field"), std::string::npos);
  EXPECT_EQ(why(entry("1-0", {"handler", "h", "payload", "{}", "attempt", "x"})),
            "field attempt is not a whole number: \"x\"");
  EXPECT_EQ(why(entry("1-0", {"handler"})), "odd number of fields");
  EXPECT_NE(why(reply::make_string("x")).find("not a stream entry"), std::string::npos);
}

TEST(queue_job, decide_retries_with_growing_jittered_backoff_then_dead) {
  retry_policy p{.max_attempts = 4, .backoff = 1000ms, .exponential = true};
  std::mt19937_64 rng(1);
  auto first = decide(p, 1, false, "boom", std::nullopt, rng);
  EXPECT_TRUE(first.retry);
  EXPECT_GE(first.delay, 500ms);
  EXPECT_LE(first.delay, 1000ms);
  auto third = decide(p, 3, false, "boom", std::nullopt, rng);
  EXPECT_GE(third.delay, 2000ms);
  EXPECT_LE(third.delay, 4000ms);
  auto last = decide(p, 4, false, "boom", std::nullopt, rng);
  EXPECT_FALSE(last.retry);
  EXPECT_EQ(last.reason, "failed 4 times; last error: boom");
}

TEST(queue_job, decide_honours_permanent_failures_retry_after_and_fixed_backoff) {
  std::mt19937_64 rng(1);
  retry_policy fixed{.max_attempts = 3, .backoff = 250ms, .exponential = false};
  EXPECT_EQ(decide(fixed, 2, false, "x", std::nullopt, rng).delay, 250ms);
  EXPECT_EQ(decide(fixed, 1, false, "x", 7s, rng).delay, 7s);
  auto perm = decide(fixed, 1, true, "unknown handler \"nope\"", std::nullopt, rng);
  EXPECT_FALSE(perm.retry);
  EXPECT_EQ(perm.reason, "unknown handler \"nope\"");
  retry_policy capped{.max_attempts = 50, .backoff = 1s, .exponential = true, .max_backoff = 5s};
  EXPECT_LE(decide(capped, 40, false, "x", std::nullopt, rng).delay, 5s);
}

} // namespace

namespace {

// The hot path's JSON check accepts exactly what boost::json::parse accepts.
TEST(queue_job, check_json_agrees_with_the_full_parser) {
  std::string deep(32, '['), deeper(33, '[');
  deep += std::string(32, ']');
  deeper += std::string(33, ']');
  std::vector<std::string> texts{"{}", " [1, 2.5, -3e9, true, null, \"x\"] ", "\"\\u00e9\"", "18446744073709551615", "",
        "{", "{} x", "[1,]", "nul", "\"\xff\"", "{\"a\":1,\"a\":2}", "// c\n1", deep, deeper};
  for (const auto& text : texts) {
    boost::system::error_code full;
    boost::json::parse(text, full);
    EXPECT_EQ(static_cast<bool>(forq::queue::check_json(text)), static_cast<bool>(full)) << text;
  }
  EXPECT_FALSE(forq::queue::check_json(deep));
  EXPECT_TRUE(forq::queue::check_json(deeper)); // too deep, as the parser says
}

} // namespace
