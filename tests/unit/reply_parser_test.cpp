// The RESP reader, fed every split point of a buffer (STYLE.md: faults are swept, not sampled).
#include "forq/redis/reply.hpp"

#include <gtest/gtest.h>

namespace forq::redis {
// Readable test failures: "[\"foo\", (integer) -42]" rather than bytes.
void PrintTo(const reply& r, std::ostream* os) {
  *os << r.to_string();
}
} // namespace forq::redis

namespace {

using namespace std::string_literals;
using forq::redis::reply;
using forq::redis::reply_parser;

const std::string wire = "*4\r\n$3\r\nfoo\r\n:-42\r\n*2\r\n$-1\r\n+OK\r\n$6\r\na\r\n\0bc\r\n"s +
                         "-ERR no such key\r\n" + "$0\r\n\r\n" + "*0\r\n";

std::vector<reply> expected() {
  return {reply::make_array({reply::make_string("foo"), reply::make_integer(-42),
                             reply::make_array({reply{}, reply::make_status("OK")}),
                             reply::make_string(std::string("a\r\n\0bc", 6))}),
          reply::make_error("ERR no such key"), reply::make_string(""), reply::make_array({})};
}

std::vector<reply> drain(reply_parser& p) {
  std::vector<reply> out;
  for (reply r; p.next(r) == reply_parser::status::reply;)
    out.push_back(r);
  return out;
}

TEST(reply_parser, every_split_point_of_the_buffer_gives_the_same_replies) {
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    reply_parser p;
    p.feed(std::string_view(wire).substr(0, cut));
    auto got = drain(p);
    p.feed(std::string_view(wire).substr(cut));
    auto rest = drain(p);
    got.insert(got.end(), rest.begin(), rest.end());
    ASSERT_EQ(got, expected()) << "split at byte " << cut;
  }
}

TEST(reply_parser, byte_by_byte) {
  reply_parser p;
  std::vector<reply> got;
  for (char c : wire) {
    p.feed(std::string_view(&c, 1));
    auto more = drain(p);
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_EQ(got, expected());
}

TEST(reply_parser, garbage_is_a_protocol_error) {
  reply_parser p;
  p.feed("?what\r\n");
  reply r;
  EXPECT_EQ(p.next(r), reply_parser::status::protocol_error);
  EXPECT_FALSE(p.error_text().empty());
  p.reset();
  p.feed("+PONG\r\n");
  ASSERT_EQ(p.next(r), reply_parser::status::reply);
  EXPECT_EQ(r.str(), "PONG");
}

TEST(reply_parser, array_lengths_out_of_range_are_protocol_errors) {
  for (std::string bad : {"*-2\r\n", "*2147483648\r\n", "*16777217\r\n", "*2\r\n*-5\r\n"}) {
    reply_parser p;
    p.feed(bad);
    reply r;
    EXPECT_EQ(p.next(r), reply_parser::status::protocol_error) << bad;
  }
  reply_parser ok; // nil arrays and empty arrays are fine
  ok.feed("*-1\r\n*0\r\n");
  reply r;
  ASSERT_EQ(ok.next(r), reply_parser::status::reply);
  EXPECT_TRUE(r.is_nil());
  ASSERT_EQ(ok.next(r), reply_parser::status::reply);
  EXPECT_TRUE(r.is_array());
}

TEST(reply, typed_accessors) {
  EXPECT_EQ(reply::make_string("12").as_integer(), 12);
  EXPECT_EQ(reply::make_string("x").as_integer(), std::nullopt);
  EXPECT_EQ(reply::make_integer(5).as_integer(), 5);
  EXPECT_EQ(reply::make_status("OK").as_string(), "OK");
  EXPECT_EQ(reply{}.as_string(), std::nullopt);
  EXPECT_EQ(reply::make_error("ERR x").as_string(), std::nullopt);
  EXPECT_EQ(reply::make_error("WRONGTYPE Operation").error_code(), "WRONGTYPE");
  for (auto busy : {"LOADING Redis is loading", "BUSY script", "TRYAGAIN later", "MASTERDOWN no"})
    EXPECT_TRUE(reply::make_error(busy).is_retry_later()) << busy;
  EXPECT_FALSE(reply::make_error("ERR LOADING").is_retry_later());
  EXPECT_TRUE(reply::make_error("NOSCRIPT No matching script").is_noscript());
  EXPECT_EQ(reply::make_array({reply::make_integer(1), reply{}}).to_string(),
            "[(integer) 1, (nil)]");
}

} // namespace

namespace {

// A header may not make the parser allocate more than max_array_elements slots.
TEST(reply_parser_bounds, an_array_header_over_the_bound_is_a_protocol_error) {
  forq::redis::reply_parser p;
  p.feed("*" + std::to_string(forq::redis::reply_parser::max_array_elements + 1) + "\r\n");
  forq::redis::reply r;
  EXPECT_EQ(p.next(r), forq::redis::reply_parser::status::protocol_error);
  forq::redis::reply_parser ok;
  ok.feed("*2\r\n:1\r\n:2\r\n");
  ASSERT_EQ(ok.next(r), forq::redis::reply_parser::status::reply);
  EXPECT_EQ(r.elements().size(), 2u);
}

} // namespace
