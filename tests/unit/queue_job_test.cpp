// The consumer's decisions and its one conversion from a stream entry to a job, no sockets.
#include "forq/queue/producer.hpp"
#include "queue/job.hpp"
#include "queue/protocol.hpp"
#include "queue/verdict.hpp"

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

TEST(queue_job, each_failed_attempt_adds_its_error_and_the_last_ten_are_kept) {
  delivered_job j;
  auto list = boost::json::parse(with_error(j, 1, "timeout", 1000)).as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("attempt"), 1);
  EXPECT_EQ(list[0].at("at_ms"), 1000);
  EXPECT_EQ(list[0].at("error"), "timeout");
  for (int attempt = 2; attempt <= 12; ++attempt) {
    j.fields.clear();
    j.fields.emplace_back("errors", boost::json::serialize(list));
    list = boost::json::parse(with_error(j, attempt, "e" + std::to_string(attempt), attempt))
               .as_array();
  }
  ASSERT_EQ(list.size(), errors_kept);
  EXPECT_EQ(list.front().at("attempt"), 3); // the oldest two gone
  EXPECT_EQ(list.back().at("error"), "e12");
  // A long error is cut; one that is not UTF-8 still makes JSON; a field that is not forq's
  // list is started again.
  j.fields.clear();
  j.fields.emplace_back("errors", "whatever a producer put here");
  list = boost::json::parse(with_error(j, 1, std::string(5000, 'x') + "\xff", 1)).as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("error").as_string().size(), error_bytes_kept);
  // A list with things other than entries in it keeps only the entries.
  j.fields.clear();
  j.fields.emplace_back("errors",
                        R"([null, 7, "x", [], {"attempt": 1, "at_ms": 5, "error": "a"}])");
  list = boost::json::parse(with_error(j, 2, "b", 6)).as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("error"), "a");
  EXPECT_EQ(list[1].at("error"), "b");
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
  retry_policy p{
      .max_attempts = 4, .backoff = 1000ms, .exponential = true, .max_backoff = 1h, .jitter = {}};
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
  retry_policy fixed{
      .max_attempts = 3, .backoff = 250ms, .exponential = false, .max_backoff = 1h, .jitter = {}};
  EXPECT_EQ(decide(fixed, 2, false, "x", std::nullopt, rng).delay, 250ms);
  EXPECT_EQ(decide(fixed, 1, false, "x", 7s, rng).delay, 7s);
  auto perm = decide(fixed, 1, true, "unknown handler \"nope\"", std::nullopt, rng);
  EXPECT_FALSE(perm.retry);
  EXPECT_EQ(perm.reason, "unknown handler \"nope\"");
  retry_policy capped{
      .max_attempts = 50, .backoff = 1s, .exponential = true, .max_backoff = 5s, .jitter = {}};
  EXPECT_LE(decide(capped, 40, false, "x", std::nullopt, rng).delay, 5s);
}

} // namespace

namespace {

// The hot path's JSON check accepts exactly what boost::json::parse accepts.
TEST(queue_job, check_json_agrees_with_the_full_parser) {
  std::string deep(32, '['), deeper(33, '[');
  deep += std::string(32, ']');
  deeper += std::string(33, ']');
  std::vector<std::string> texts{"{}",
                                 " [1, 2.5, -3e9, true, null, \"x\"] ",
                                 "\"\\u00e9\"",
                                 "18446744073709551615",
                                 "",
                                 "{",
                                 "{} x",
                                 "[1,]",
                                 "nul",
                                 "\"\xff\"",
                                 "{\"a\":1,\"a\":2}",
                                 "// c\n1",
                                 deep,
                                 deeper};
  for (const auto& text : texts) {
    boost::system::error_code full;
    boost::json::parse(text, full);
    EXPECT_EQ(static_cast<bool>(forq::queue::check_json(text)), static_cast<bool>(full)) << text;
  }
  EXPECT_FALSE(forq::queue::check_json(deep));
  EXPECT_TRUE(forq::queue::check_json(deeper)); // too deep, as the parser says
}

} // namespace

namespace {

using forq::queue::apply;
using forq::queue::parse_retry;
using forq::queue::retry_override;
using forq::queue::retry_policy;

retry_override parsed(std::string_view text) {
  auto r = parse_retry(text);
  if (!r) ADD_FAILURE() << text << ": " << r.error().message();
  return r ? *r : retry_override{};
}

std::string refused(std::string_view text) {
  auto r = parse_retry(text);
  if (r) ADD_FAILURE() << text << " was accepted";
  EXPECT_TRUE(!r && r.error() == forq::errc::invalid_value);
  return r ? "" : r.error().message();
}

// Issue 17 item 8: the retry policy as text, one grammar for config, --queues, the CLI, the API
// and the protocol's `retry` field.
TEST(retry_policy_text, parts_in_any_order_read_back_as_written) {
  auto r = parsed("10/fixed/30s");
  EXPECT_EQ(r.attempts, 10);
  EXPECT_EQ(r.exponential, false);
  EXPECT_EQ(r.base, 30s);
  EXPECT_FALSE(r.max);
  EXPECT_FALSE(r.jitter);
  r = parsed("nojitter/500ms/exponential/1h/8");
  EXPECT_EQ(r.attempts, 8);
  EXPECT_EQ(r.base, 500ms);
  EXPECT_EQ(r.max, 1h);
  EXPECT_EQ(r.jitter, false);
  EXPECT_EQ(parsed("max=10m").max, 10min);
  EXPECT_FALSE(parsed("max=10m").base);
  EXPECT_EQ(parsed("1.5s").base, 1500ms);
  EXPECT_EQ(parsed("2d").base, 48h);
  for (const char* text : {"5", "10/fixed/30s", "8/exponential/500ms/1h/nojitter", "max=10m",
                           "jitter", "exponential/2s/10m"}) {
    auto once = parsed(text);
    EXPECT_EQ(parsed(forq::queue::to_string(once)), once) << text;
  }
  EXPECT_EQ(forq::queue::to_string(parsed("nojitter/500ms/exponential/1h/8")),
            "8/exponential/500ms/1h/nojitter");
  EXPECT_EQ(forq::queue::to_string(retry_policy{}), "3/exponential/1s/1h/jitter");
}

TEST(retry_policy_text, bad_parts_are_named_with_what_is_allowed) {
  EXPECT_NE(refused("5/fixd").find("\"fixd\" is not a part of a retry policy: use attempts"),
            std::string::npos);
  EXPECT_EQ(refused("0"), "attempts 0 is not allowed: use a whole number from 1 to 1000");
  EXPECT_EQ(refused("1001"), "attempts 1001 is not allowed: use a whole number from 1 to 1000");
  EXPECT_EQ(refused("5/6"), "the number of attempts is given twice");
  EXPECT_EQ(refused("fixed/exponential"), "fixed or exponential is given twice");
  EXPECT_EQ(refused("1s/2s/3s"), "the cap is given twice");
  EXPECT_EQ(refused("2m/1s"), "the cap 1s is shorter than the base wait 2m");
  EXPECT_EQ(refused("8d"), "the base wait 8d is not allowed: use 1ms to 7d");
  EXPECT_EQ(refused("0.4ms"), "0.4ms is under 1ms");
  EXPECT_EQ(refused("999999999999999d"),
            "the base wait 999999999999999d is not allowed: use 1ms to 7d");
  EXPECT_EQ(refused("1s/1e300s").substr(0, 7), "\"1e300s"); // not a duration: no exponents
  EXPECT_NE(refused("").find("empty"), std::string::npos);
  EXPECT_NE(refused("5s/").find("\"\" is not a part"), std::string::npos);
  EXPECT_NE(refused("10 s").find("is not a part"), std::string::npos);
  EXPECT_NE(refused("-1").find("is not a part"), std::string::npos);
}

TEST(retry_policy_text, levels_go_over_each_other_and_fixed_waits_exactly) {
  // forq's defaults, then the worker's `retry`, then the queue's, then the job's.
  auto p = apply(apply(apply(retry_policy{}, parsed("5/fixed")), parsed("2s")), parsed("7"));
  EXPECT_EQ(p.max_attempts, 7);
  EXPECT_FALSE(p.exponential);
  EXPECT_EQ(p.backoff, 2s);
  EXPECT_EQ(p.max_backoff, 1h);
  std::mt19937_64 rng(1);
  for (int attempt = 1; attempt < 7; ++attempt) // fixed: no jitter unless asked
    EXPECT_EQ(decide(p, attempt, false, "x", std::nullopt, rng).delay, 2s);
  EXPECT_FALSE(decide(p, 7, false, "x", std::nullopt, rng).retry);
  auto jittered = apply(p, parsed("jitter"));
  bool varied = false;
  for (int i = 0; i < 20; ++i) {
    auto d = decide(jittered, 1, false, "x", std::nullopt, rng).delay;
    EXPECT_GE(d, 1s);
    EXPECT_LE(d, 2s);
    varied = varied || d != 2s;
  }
  EXPECT_TRUE(varied);
  // Exponential without jitter: base x 2^(attempt-1), up to the cap.
  auto exact = apply(retry_policy{}, parsed("10/exponential/100ms/1s/nojitter"));
  EXPECT_EQ(decide(exact, 1, false, "x", std::nullopt, rng).delay, 100ms);
  EXPECT_EQ(decide(exact, 3, false, "x", std::nullopt, rng).delay, 400ms);
  EXPECT_EQ(decide(exact, 9, false, "x", std::nullopt, rng).delay, 1s);
}

// A foreign producer's `retry` field is read by the consumer, and a bad one makes the job dead
// saying why, as a bad max_attempts does.
TEST(retry_policy_text, the_protocol_field_is_read_and_checked) {
  using forq::redis::reply;
  auto entry = [](std::vector<std::string> kv) {
    std::vector<reply> fields;
    for (auto& f : kv)
      fields.push_back(reply::make_string(f));
    std::vector<reply> e;
    e.push_back(reply::make_string("5-0"));
    e.push_back(reply::make_array(std::move(fields)));
    return reply::make_array(std::move(e));
  };
  auto good = forq::queue::parse_entry("q", "forq:{q}:stream", 0,
                                       entry({"payload", "1", "retry", "4/fixed/1s"}));
  ASSERT_TRUE(std::holds_alternative<forq::queue::delivered_job>(good));
  EXPECT_EQ(std::get<forq::queue::delivered_job>(good).retry, parsed("4/fixed/1s"));
  auto bad =
      forq::queue::parse_entry("q", "forq:{q}:stream", 0, entry({"payload", "1", "retry", "x"}));
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_NE(std::get<std::string>(bad).find("field retry \"x\": \"x\" is not a part"),
            std::string::npos)
      << std::get<std::string>(bad);
}

// The producer writes the override as the protocol's `retry` field, and checks one built in
// code.
TEST(retry_policy_text, the_producer_writes_and_checks_it) {
  forq::queue::new_job j;
  j.handler = "h";
  j.max_attempts = 4;
  j.retry = parsed("fixed/30s");
  std::string storage;
  auto fields = forq::queue::job_fields(j, storage);
  std::vector<std::string> got(fields.begin(), fields.end());
  EXPECT_EQ(got, (std::vector<std::string>{"handler", "h", "payload", "{}", "max_attempts", "4",
                                           "retry", "fixed/30s"}));
  EXPECT_TRUE(forq::queue::check_job(j));
  j.retry->attempts = 0;
  auto refused = [&] {
    auto r = forq::queue::check_job(j);
    EXPECT_TRUE(!r && r.error() == forq::errc::invalid_job);
    return r ? std::string() : r.error().message();
  };
  EXPECT_EQ(refused(), "retry attempts 0 is not allowed: use a whole number from 1 to 1000");
  j.retry = retry_override{};
  EXPECT_NE(refused().find("retry is empty"), std::string::npos);
}

} // namespace
