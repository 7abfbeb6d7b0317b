#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace forq::redis {

// One RESP2 reply, converted once from hiredis's tree (in reply.cpp) and read through typed
// accessors from then on.
class reply {
 public:
  enum class kind { string, status, error, integer, nil, array };

  reply() = default; // nil
  static reply make_string(std::string s) { return reply(kind::string, std::move(s)); }
  static reply make_status(std::string s) { return reply(kind::status, std::move(s)); }
  static reply make_error(std::string s) { return reply(kind::error, std::move(s)); }
  static reply make_integer(std::int64_t v);
  static reply make_array(std::vector<reply> items);

  kind type() const { return kind_; }
  bool is_nil() const { return kind_ == kind::nil; }
  bool is_error() const { return kind_ == kind::error; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_string() const { return kind_ == kind::string; } // a bulk string

  // The text of a bulk string, a status or an error; empty for other kinds.
  std::string_view str() const { return text_; }
  // A bulk string or status as text; nothing for nil, integer, error or array.
  std::optional<std::string_view> as_string() const;
  // An integer reply, or a bulk string holding a decimal integer.
  std::optional<std::int64_t> as_integer() const;
  const std::vector<reply>& elements() const { return elements_; }

  // -LOADING, -BUSY, -TRYAGAIN, -MASTERDOWN: the server cannot answer now, but will.
  bool is_retry_later() const;
  // -NOSCRIPT: EVALSHA of a script the server does not hold (restart, SCRIPT FLUSH).
  bool is_noscript() const;
  // -OOM (maxmemory under noeviction), -READONLY (a replica), -MISCONF (a failed RDB save):
  // Redis refuses writes for now. Also when a script's error carries one of them.
  bool is_write_refused() const;
  // -NOGROUP: a stream or its consumer group is gone (Redis restarted empty, was flushed, ...);
  // or -UNBLOCKED, a blocked XREADGROUP whose stream was deleted under it (Redis 7).
  bool is_nogroup() const;
  // The error's code, its first word: "ERR", "WRONGTYPE", ...; empty if not an error.
  std::string_view error_code() const;

  // For logs and test failures: "PONG", "\"bulk\"", "(integer) 3", "(nil)", "(error) ERR x".
  std::string to_string() const;

  friend bool operator==(const reply&, const reply&) = default;
  friend struct reply_builder; // reply.cpp: hiredis builds replies in place through it

 private:
  reply(kind k, std::string s)
      : kind_(k)
      , text_(std::move(s)) {}

  kind kind_ = kind::nil;
  std::string text_;
  std::int64_t integer_ = 0;
  std::vector<reply> elements_;
};

// Incremental RESP parser over hiredis's redisReader: feed bytes as they arrive, take whole
// replies out as they complete, whatever the split of the bytes. hiredis builds forq replies
// directly (its object-factory hooks), so no intermediate redisReply tree is made and freed.
class reply_parser {
 public:
  reply_parser();
  ~reply_parser();
  reply_parser(const reply_parser&) = delete;
  reply_parser& operator=(const reply_parser&) = delete;

  void feed(std::string_view bytes);
  enum class status { reply, need_more, protocol_error };
  // A longer array is refused as a protocol error (hiredis 0.14 does not bound them). Its slots
  // are allocated when the header arrives, so the bound is also the most a lying header can
  // make forq allocate: 1 Mi elements, about 80 MB (the job-decoder fuzzer found 16 Mi, 1.3 GB,
  // too much). forq's largest replies are a fetch of at most `concurrency` (100,000) entries.
  static constexpr std::size_t max_array_elements = std::size_t(1) << 20;
  // On status::reply, `out` holds the next complete reply.
  status next(reply& out);
  std::string error_text() const;
  void reset(); // a new connection: forget buffered bytes and any error

 private:
  redisReader* reader_;
  reply top_; // hiredis builds each top-level reply here, then next() moves it out
};

} // namespace forq::redis
