// Issue 13's decisions, without sockets: job ids that carry their priority, records that are
// always valid UTF-8 JSON, foreign jobs held to the documented limits, how a consumer paces a
// Redis that refuses writes, which error replies mean what, and who may change things over HTTP.
#include "config/config.hpp"
#include "forq/queue/producer.hpp"
#include "forq/redis/reply.hpp"
#include "http/access.hpp"
#include "queue/consumer.hpp"
#include "queue/job.hpp"
#include "queue/protocol.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using forq::redis::reply;
using namespace forq::queue;
namespace json = boost::json;

reply entry(std::string id, std::vector<std::string> kv) {
  std::vector<reply> fields;
  for (auto& s : kv)
    fields.push_back(reply::make_string(std::move(s)));
  std::vector<reply> e;
  e.push_back(reply::make_string(std::move(id)));
  e.push_back(reply::make_array(std::move(fields)));
  return reply::make_array(std::move(e));
}

// Parses with Boost.JSON, which refuses text that is not UTF-8.
bool valid_json(const std::string& text) {
  boost::system::error_code ec;
  json::parse(text, ec);
  return !ec;
}

TEST(job_ids, a_first_attempt_s_id_carries_its_priority) {
  EXPECT_EQ(first_attempt_id("1700000000000-0", 0), "1700000000000-0");
  EXPECT_EQ(first_attempt_id("1700000000000-0", 5), "1700000000000-0-p5");
  // Two entries with one entry id on two priorities are two jobs.
  EXPECT_NE(first_attempt_id("1700000000000-0", 0), first_attempt_id("1700000000000-0", 9));
  auto e = entry_of("1700000000000-3-p5");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->first, "1700000000000-3");
  EXPECT_EQ(e->second, 5);
  e = entry_of("1700000000000-3");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->second, 0);
  EXPECT_FALSE(entry_of("order-42"));
  EXPECT_FALSE(entry_of("1700000000000-d7")); // a delayed job's id
  EXPECT_FALSE(entry_of("1700000000000-3-p0"));
  EXPECT_FALSE(entry_of("1700000000000-3-p10"));
  EXPECT_FALSE(entry_of("-3"));
}

TEST(job_ids, a_caller_id_shaped_like_a_generated_one_is_refused) {
  for (std::string id : {"1700000000000-0", "1700000000000-0-p5", "1700000000000-d3"}) {
    new_job j;
    j.handler = "echo";
    j.id = id;
    auto checked = check_job(j);
    ASSERT_FALSE(checked) << id;
    auto why = checked.error().message();
    EXPECT_NE(why.find("has the shape of an id forq generates"), std::string::npos) << why;
  }
  new_job ok;
  ok.handler = "echo";
  ok.id = "order-1700000000000-0";
  EXPECT_TRUE(check_job(ok));
  ok.id = std::string("caf\xc3\xa9");
  EXPECT_TRUE(check_job(ok));
  ok.id = std::string("bad\xff");
  ASSERT_FALSE(check_job(ok));
  EXPECT_EQ(check_job(ok).error().message(), "id must be UTF-8 text");
  // Ids are printed in lines, logs and terminals: no control character gets in.
  for (std::string bad : {std::string("a\nb"), std::string("a\tb"), std::string("a\0b", 3),
                          std::string("\x1b[31mred"), std::string("del\x7f"),
                          std::string("c1\xc2\x9b"
                                      "2J")}) {
    ok.id = bad;
    ASSERT_FALSE(check_job(ok)) << bad;
    EXPECT_NE(check_job(ok).error().message().find("control characters"), std::string::npos);
  }
  ok.id = "schedule:daily report/2026 \xc2\xa0x"; // spaces, ':', '/', a no-break space: fine
  EXPECT_TRUE(check_job(ok));
}

TEST(job_ids, parse_entry_names_a_job_by_its_stream_s_priority) {
  auto p0 =
      parse_entry("q", "forq:{q}:stream", 0, entry("5-0", {"handler", "echo", "payload", "1"}));
  auto p7 =
      parse_entry("q", "forq:{q}:stream:p7", 7, entry("5-0", {"handler", "echo", "payload", "1"}));
  ASSERT_TRUE(std::holds_alternative<delivered_job>(p0));
  ASSERT_TRUE(std::holds_alternative<delivered_job>(p7));
  EXPECT_EQ(std::get<delivered_job>(p0).id, "5-0");
  EXPECT_EQ(std::get<delivered_job>(p7).id, "5-0-p7");
  // A later attempt keeps the id it carries.
  auto again = parse_entry("q", "forq:{q}:stream:p7", 7,
                           entry("9-0", {"id", "5-0-p7", "handler", "echo", "payload", "1"}));
  EXPECT_EQ(std::get<delivered_job>(again).id, "5-0-p7");
}

TEST(utf8, well_formed_text_is_told_from_bytes_that_are_not) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("plain ascii"));
  EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_utf8("\xff"));
  EXPECT_FALSE(is_utf8("\xc3"));             // cut short
  EXPECT_FALSE(is_utf8("\xc0\xaf"));         // overlong
  EXPECT_FALSE(is_utf8("\xed\xa0\x80"));     // a surrogate
  EXPECT_FALSE(is_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
  EXPECT_EQ(to_utf8("a\xff"
                    "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(to_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  json::object o;
  o["k"] = std::string("v\xfe\xff");
  EXPECT_FALSE(valid_json(json::serialize(o))); // what forq wrote before
  EXPECT_TRUE(valid_json(serialize_utf8(o)));
}

// Numbers as people write them, not as boost::json::serialize does (6E1, 2.5E0, 1E3).
TEST(utf8, json_numbers_are_written_as_people_write_them) {
  json::object o;
  o["a"] = 60.0;
  o["b"] = 2.5;
  o["c"] = 1000;
  o["d"] = 1e21;
  o["e"] = -0.001;
  o["f"] = json::array{1.5, true, nullptr, "x"};
  o["g"] = 1e7;  // shortest digits alone would say 1e+07
  o["h"] = 1e-7; // too small to write out
  EXPECT_EQ(serialize_utf8(o), R"({"a":60,"b":2.5,"c":1000,"d":1e+21,"e":-0.001,)"
                               R"("f":[1.5,true,null,"x"],"g":10000000,"h":1e-07})");
  EXPECT_EQ(json::serialize(json::value(60.0)), "6E1"); // what Boost would have written
  // The same text reads back as the same numbers (60 as a whole number: equal in value).
  auto back = json::parse(serialize_utf8(o)).as_object();
  for (const char* k : {"a", "b", "c", "d", "e", "g", "h"})
    EXPECT_EQ(back.at(k).to_number<double>(), o.at(k).to_number<double>()) << k;
  forq::config cfg;
  cfg.lease = std::chrono::milliseconds(2500);
  auto shown = forq::to_json(cfg);
  EXPECT_NE(shown.find("\"lease\":2.5"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\"drain_timeout\":30"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("E1"), std::string::npos) << shown;
}

TEST(records, a_dead_record_is_valid_json_and_keeps_the_bytes_that_arrived) {
  delivered_job j;
  j.id = "5-0";
  j.fields = {{"handler", "echo"},
              {"payload", "{\"a\":1}"},
              {"note", std::string("\xff\x00z", 3)},
              {std::string("k\xfe"), "v"}};
  auto text = to_json(j, 1, {{"reason", std::string("unknown handler \"\xff\"")}});
  ASSERT_TRUE(valid_json(text)) << text;
  auto o = json::parse(text).as_object();
  EXPECT_EQ(o.at("note").as_string(), std::string("\xef\xbf\xbd\0z", 5));
  EXPECT_EQ(o.at("reason").as_string(), "unknown handler \"\xef\xbf\xbd\"");
  const auto& raw = o.at("raw_hex").as_array();
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw[0].as_array()[0].as_string(), "note");
  EXPECT_EQ(raw[0].as_array()[2].as_string(), "ff007a");
  EXPECT_EQ(raw[1].as_array()[1].as_string(), "6bfe");
  // A record of UTF-8 fields has no raw_hex.
  delivered_job clean;
  clean.fields = {{"payload", "1"}};
  EXPECT_FALSE(json::parse(to_json(clean, 1, {})).as_object().contains("raw_hex"));
}

TEST(foreign_jobs, are_held_to_the_documented_limits) {
  auto why = [](std::vector<std::string> kv) -> std::string {
    auto r = parse_entry("q", "forq:{q}:stream", 0, entry("5-0", std::move(kv)));
    auto* s = std::get_if<std::string>(&r);
    return s ? *s : "";
  };
  EXPECT_NE(why({"payload", "1", "max_attempts", "0"})
                .find("max_attempts 0 is not allowed: use a whole number from 1 to 1000"),
            std::string::npos);
  EXPECT_NE(why({"payload", "1", "max_attempts", "1001"}).find("use a whole number from 1 to 1000"),
            std::string::npos);
  EXPECT_EQ(why({"payload", "1", "max_attempts", "1000"}), "");
  EXPECT_EQ(why({"payload", "1", "id", "x\xff"}), "id is not UTF-8 text");
  auto handler = why({"payload", "1", "handler", "\xfe\xff"});
  EXPECT_NE(handler.find("is not allowed"), std::string::npos);
  EXPECT_TRUE(is_utf8(handler));
  EXPECT_NE(why({"payload", "\"\xff\""}).find("payload is not JSON"), std::string::npos);
  EXPECT_TRUE(is_utf8(why({"payload", "1", "attempt", "\xff"})));
}

TEST(refusal_spell, says_it_once_backs_off_and_says_when_it_is_over) {
  refusal_spell s;
  EXPECT_FALSE(s.active());
  auto first = s.refused("q", "OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_TRUE(s.active());
  EXPECT_NE(first.log.find("queue q: Redis refuses writes (OOM command not allowed"),
            std::string::npos);
  EXPECT_EQ(first.wait, std::chrono::milliseconds(100));
  std::vector<long long> waits;
  for (int i = 0; i < 6; ++i) {
    auto next = s.refused("q", "OOM ...");
    EXPECT_TRUE(next.log.empty()); // once per spell
    waits.push_back(next.wait.count());
  }
  EXPECT_EQ(waits, (std::vector<long long>{200, 400, 800, 1000, 1000, 1000}));
  EXPECT_EQ(s.accepted("q"), "queue q: Redis accepts writes again (after 7 refusals)");
  EXPECT_FALSE(s.active());
  EXPECT_EQ(s.accepted("q"), ""); // no spell, nothing to say
  EXPECT_EQ(s.refused("q", "READONLY You can't write against a read only replica.").wait,
            std::chrono::milliseconds(100));
}

TEST(replies, write_refusals_and_vanished_groups_are_recognised) {
  EXPECT_TRUE(reply::make_error("OOM command not allowed when used memory > 'maxmemory'.")
                  .is_write_refused());
  EXPECT_TRUE(reply::make_error("READONLY You can't write against a read only replica.")
                  .is_write_refused());
  EXPECT_TRUE(reply::make_error("MISCONF Redis is configured to save RDB snapshots, but ...")
                  .is_write_refused());
  // Inside a script, Redis 7 keeps the command's error and appends where it came from.
  EXPECT_TRUE(reply::make_error("OOM command not allowed when used memory > 'maxmemory'. "
                                "script: abc, on @user_script:12.")
                  .is_write_refused());
  EXPECT_FALSE(reply::make_error("ERR wrong number of arguments").is_write_refused());
  EXPECT_FALSE(reply::make_string("OOM").is_write_refused());
  EXPECT_TRUE(reply::make_error("NOGROUP No such key 'forq:{q}:stream' or consumer group "
                                "'workers' in XREADGROUP with GROUP option")
                  .is_nogroup());
  EXPECT_TRUE(reply::make_error("UNBLOCKED the stream key no longer exists").is_nogroup());
  EXPECT_FALSE(reply::make_error("UNBLOCKED client unblocked via CLIENT UNBLOCK").is_nogroup());
  EXPECT_FALSE(reply::make_error("BUSYGROUP Consumer Group name already exists").is_nogroup());
  auto readonly = write_error(reply::make_error("READONLY You can't write"));
  EXPECT_EQ(readonly, forq::errc::redis_refuses_writes);
  EXPECT_EQ(readonly.message(), "READONLY You can't write");
  EXPECT_EQ(write_error(reply::make_error("WRONGTYPE Operation against a key")),
            forq::errc::redis_refused);
}

TEST(http_access, changes_need_a_token_or_a_loopback_peer) {
  using forq::http::access;
  using forq::http::decide_access;
  namespace ip = boost::asio::ip;
  auto local = ip::make_address("127.0.0.1"), local2 = ip::make_address("127.8.9.10"),
       local6 = ip::make_address("::1"), mapped = ip::make_address("::ffff:127.0.0.1"),
       remote = ip::make_address("192.0.2.2"), remote6 = ip::make_address("2001:db8::2"),
       mapped_remote = ip::make_address("::ffff:192.0.2.2");
  // Reading is open to whoever reaches the listener.
  EXPECT_EQ(decide_access(false, false, false, false, remote), access::allowed);
  EXPECT_EQ(decide_access(false, true, false, false, remote), access::allowed);
  // No token: changes from this machine only, unless opened on purpose.
  for (const auto& a : {local, local2, local6, mapped})
    EXPECT_EQ(decide_access(true, false, false, false, a), access::allowed) << a.to_string();
  for (const auto& a : {remote, remote6, mapped_remote}) {
    EXPECT_EQ(decide_access(true, false, false, false, a), access::loopback_only) << a.to_string();
    EXPECT_EQ(decide_access(true, false, false, true, a), access::allowed) << a.to_string();
  }
  // A token: needed from everyone, loopback included; api_open does not waive it.
  EXPECT_EQ(decide_access(true, true, false, false, local), access::needs_token);
  EXPECT_EQ(decide_access(true, true, false, true, remote), access::needs_token);
  EXPECT_EQ(decide_access(true, true, true, false, remote), access::allowed);
}

} // namespace

namespace {

// One keeper per queue per host: the role is taken when free or when its holder has exited,
// and never from a live process.
TEST(keeper_test, the_role_is_taken_when_free_or_orphaned_never_from_a_live_holder) {
  std::atomic<std::int32_t> holder{0};
  EXPECT_TRUE(forq::queue::claim_keeper(holder));
  EXPECT_EQ(holder.load(), ::getpid());
  EXPECT_TRUE(forq::queue::claim_keeper(holder)); // held: still ours

  holder = static_cast<std::int32_t>(::getppid()); // a live process holds it
  EXPECT_FALSE(forq::queue::claim_keeper(holder));
  EXPECT_EQ(holder.load(), ::getppid());

  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_GT(gone, 0);
  ::waitpid(gone, nullptr, 0); // exited and reaped
  holder = static_cast<std::int32_t>(gone);
  EXPECT_TRUE(forq::queue::claim_keeper(holder));
  EXPECT_EQ(holder.load(), ::getpid());
}

} // namespace
