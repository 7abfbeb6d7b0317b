#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <type_traits>

namespace forq {

// forq's one error domain. Expected outcomes travel as values (forq::expected below); exceptions
// are for bugs and for handler code forq does not control.
enum class errc {
  // A request was written but the connection dropped before its reply: it may or may not have
  // run on the server. The caller decides whether a retry is safe.
  redis_connection_lost = 1,
  // No reply within the command timeout. The connection is closed and made again, since a
  // pipelined connection cannot skip a reply.
  redis_timeout,
  // The server answered -LOADING, -BUSY, -TRYAGAIN or -MASTERDOWN: not a failure of the
  // command, try again shortly.
  redis_retry_later,
  // The connection was stopped; the request was not (or no longer) going to be sent.
  redis_shutdown,
  // The server sent bytes that are not RESP.
  redis_protocol,
  // A job refused before it reached Redis (not JSON, too large, no handler, bad option).
  invalid_job,
  // The queue on Redis was written by a forq with another protocol version.
  queue_schema_mismatch,
  // Redis answered with an error that retrying cannot fix (WRONGTYPE, NOPERM, ...).
  redis_refused,
  // No connection to Redis before the request's deadline (exec_options::deadline): the request
  // was never sent, so it did not run.
  redis_unavailable,
  // Redis refused forq's credentials (a wrong password or ACL user, or none given where one is
  // required): retrying cannot help. The connection stops trying.
  redis_auth_failed,
  // Redis refuses writes for now (-OOM at maxmemory, -READONLY on a replica, -MISCONF after a
  // failed save): nothing was written; it may accept them later.
  redis_refuses_writes,
  // redis.durability = replicated:N: the write was made on the primary, but fewer than N
  // replicas acknowledged it within the timeout (WAIT). It may survive, or be lost in a failover.
  redis_not_confirmed,
  // A value forq was given is not allowed: a Redis URL, a retry policy, a setting, a queue or
  // handler name, a limit. The error's message names the value and what is allowed.
  invalid_value,
  // The embedded redis-server could not be started or restarted (the message says why).
  embedded_redis_failed,
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

template <class E>
concept error_code_enum = boost::system::is_error_code_enum<E>::value;

// What went wrong, as every fallible call of the public API reports it: a code to branch on
// (`e == errc::invalid_job`; an errc, or a system error from a socket or a file) and the words
// to show a person, which name the input and what is allowed. The words never hold a secret.
class error {
 public:
  error() = default; // no error (expected<T>::error() of a value)
  error(boost::system::error_code code, std::string message = {})
      : code_(code)
      , message_(std::move(message)) {}
  template <error_code_enum E>
  error(E code, std::string message = {})
      : error(make_error_code(code), std::move(message)) {}

  const boost::system::error_code& code() const { return code_; }
  // The words given where the error was found, else the code's own description.
  std::string message() const { return message_.empty() ? code_.message() : message_; }

  friend bool operator==(const error& e, const boost::system::error_code& c) {
    return e.code_ == c;
  }
  template <error_code_enum E>
  friend bool operator==(const error& e, E c) {
    return e.code_ == c;
  }

 private:
  boost::system::error_code code_;
  std::string message_;
};

// A value, or the error that kept it from being made: the return type of every fallible call of
// forq's public API (parsing a URL, a retry policy or the configuration, starting Redis,
// enqueueing, reading a queue). forq::result is taken: it is what a handler returns. The name is
// C++23's std::expected, which this becomes when forq moves to C++23; until then it is
// boost::system::result, so `if (!r)`, `*r`, `r.error()` and `r.value()` (which throws
// boost::system::system_error with the message) work as they do there.
template <class T = void>
using expected = boost::system::result<T, error>;

// Called by expected<T>::value() on an error.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

} // namespace forq

template <>
struct boost::system::is_error_code_enum<forq::errc> : std::true_type {};
