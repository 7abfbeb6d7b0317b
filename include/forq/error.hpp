#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace forq {

// forq's one error domain. Expected outcomes travel as values (error_code, system::result);
// exceptions are for bugs and for handler code forq does not control.
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
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace forq

template <>
struct boost::system::is_error_code_enum<forq::errc> : std::true_type {};
