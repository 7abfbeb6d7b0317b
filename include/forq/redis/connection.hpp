#pragma once

#include "forq/error.hpp"
#include "forq/redis/connection_state.hpp"
#include "forq/redis/reply.hpp"
#include "forq/redis/request.hpp"
#include "forq/redis_url.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace forq::redis {

class cluster_router; // redis-cluster:// (src/redis/cluster.hpp)

// redis.durability: how many replicas must hold a write before an enqueue is confirmed (and an
// ack counts as settled). 0: Redis's own promise (asynchronous replication).
struct durability {
  int replicas = 0;
  milliseconds timeout{1000}; // WAIT's timeout: the most an enqueue or an ack waits for them
};

struct connection_options {
  // A sentinel URL (endpoint.via_sentinel()) makes every connect ask the sentinels for the
  // primary first, and check with ROLE that the server found is the primary.
  redis_endpoint endpoint;
  // CLIENT SETNAME value; by default forq:<host>:<pid>:<role> (see client_name()).
  std::string client_name = "forq";
  // Connect, TLS handshake and login (AUTH, SELECT, SETNAME, PING) together.
  milliseconds connect_timeout{3000};

  // How long a written request may wait for its reply (a blocking command adds its own wait).
  // A reply that is late closes the connection: a pipeline cannot skip a reply.
  milliseconds command_timeout{5000};
  // PING a connection that has seen no traffic for this long; 0: never.
  milliseconds health_interval{2000};
  reconnect_policy reconnect;
  // Backpressure: exec() waits while this many requests are queued or awaiting replies...
  std::size_t max_in_flight = 8192;
  // ...or while their formatted bytes exceed this (a single larger request still goes alone).
  std::size_t max_buffered_bytes = 16u << 20;
  // rediss://: the CA bundle that signs the server's certificate; empty: the system's.
  std::string tls_ca_file;
  bool tls_verify = true;
  // Seeds the backoff jitter; 0: random.
  std::uint64_t seed = 0;
  // Ask the server for this connection's id at each login (CLIENT ID), so another connection
  // can end a blocking command with CLIENT UNBLOCK (client_id()).
  bool want_client_id = false;
  // Called when a reply was late and the connection is dropped for it (the server is silent),
  // with the reason: the pool drops its other connections to that server then too.
  std::function<void(const std::string&)> on_silent;
  // Called each time an established connection is lost, once its requests in flight have failed
  // (those not yet written stay queued for the next connection): a cluster router asks for the
  // slots again then, so that what waits for a primary that died goes to its successor.
  std::function<void()> on_lost;

  // redis-sentinel://: the sentinels' own password (redis.sentinel_password); empty: no AUTH.
  std::string sentinel_password;
  // redis-sentinel://: hear failovers as the sentinels announce them. Set, the connection keeps
  // a subscription to +switch-master on one sentinel (the next one when it is lost) and, when
  // its primary moves, drops itself to connect to the new one and calls this with the reason,
  // so that a pool drops its other connections too. Short-lived connections leave it empty:
  // a demoted primary's READONLY or a lost connection re-resolves anyway.
  std::function<void(const std::string&)> on_switch_master;
  // Carried for the queue layer, which WAITs after enqueues and acks (producer.hpp).
  redis::durability durability;
  // redis-cluster://: how often the slots are asked for again when nothing moved them; 0: only
  // when a reply says they moved (a pool's blocking connections, which each follow one queue).
  milliseconds cluster_refresh{10000};
};

// A connection's deadlines from one Redis timeout (forq's redis.timeout): a reply gets all of it;
// connecting and logging in get the smaller of it and 3 s.
void set_timeouts(connection_options& o, std::chrono::milliseconds redis_timeout);

struct exec_options {
  // Added to the reply deadline: the server-side wait of a blocking command (BLMOVE ... 5).
  milliseconds extra_timeout{0};
  // The caller gives up at this time. A request still waiting for a connection then completes
  // with errc::redis_unavailable: it was never sent, so it did not run and never will. A
  // request sent and not answered by then closes the connection (a pipeline cannot skip a
  // reply) and completes with errc::redis_timeout: it may have run. None: wait for a connection
  // as long as it takes, and for the reply as long as command_timeout allows.
  std::optional<steady_clock::time_point> deadline;
  // redis-cluster://: a key whose primary gets the commands of the request that name no key
  // and have no keyed neighbour in it (CLIENT UNBLOCK for a queue's blocked read, a WAIT sent
  // after a write of that queue). Ignored elsewhere. Must outlive the call.
  std::string_view route;
};

// forq:<host>:<pid>:<role>, the name every forq connection gives itself in CLIENT LIST.
std::string client_name(std::string_view role);

// One Redis connection, pipelined and self-healing. Any number of coroutines on the
// connection's executor may exec() at once: requests made in the same turn of the event loop go
// out in one write, and replies are matched to requests in order. run() owns the connection's
// whole life: connect (TCP with TCP_NODELAY, unix socket or TLS), log in, PING when idle, time
// out late replies, and reconnect with exponential backoff and jitter, one log line per change.
//
// Single-threaded: the connection, run() and every exec() must be on one executor (a child's
// single-threaded io_context).
class connection {
 public:
  connection(boost::asio::any_io_executor ex, connection_options options);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Completes only after stop() (or cancellation): every request still queued then completes
  // with errc::redis_shutdown, every request awaiting a reply with redis_connection_lost.
  boost::asio::awaitable<void> run();
  void stop();

  using response = std::vector<reply>;

  // Sends a request and completes with one reply per command, or with an error:
  // redis_connection_lost (written, no reply: it may have run), redis_timeout, redis_protocol,
  // redis_shutdown, redis_unavailable (opts.deadline passed before a connection: not sent),
  // redis_auth_failed (the server refused forq's credentials: the connection gave up). Error
  // replies (-ERR, ...) are replies, not errors. While there is no connection the request
  // waits for one (until opts.deadline); while the bounds are reached it waits for room.
  // `req` must outlive the call; the connection must outlive it too.
  boost::asio::awaitable<boost::system::result<response>> exec(const request& req,
                                                               exec_options opts = {});
  boost::asio::awaitable<boost::system::result<response>> exec(const request& req,
                                                               milliseconds extra_timeout) {
    exec_options o;
    o.extra_timeout = extra_timeout;
    return exec(req, o);
  }

  // One command. A -LOADING, -BUSY, -TRYAGAIN or -MASTERDOWN reply becomes
  // errc::redis_retry_later; other error replies are returned as replies.
  template <class... Args>
  boost::asio::awaitable<boost::system::result<reply>> command(std::string_view cmd,
                                                               const Args&... args) {
    request req(cmd, args...);
    co_return single(co_await exec(req));
  }

  // Connected and logged in: requests go out now. (A cluster: the slots are known and the
  // connections to the primaries in use are up.)
  bool ready() const;
  // The server's id for this connection (CLIENT ID, with want_client_id), 0 when unknown. (A
  // cluster: the id on the primary it used last.)
  std::int64_t client_id() const;
  // Drops the current connection as lost (requests awaiting replies fail as "may have run")
  // and connects again: for a connection that cannot tell by itself that its server went
  // silent (one waiting in a blocking command). Nothing when not connected.
  void drop(const std::string& reason);
  // Why the connection gave up for good by itself (redis_auth_failed), or nothing. It then
  // behaves as stopped, and exec() completes with this error.
  boost::system::error_code fatal_error() const;
  // The login's last failure as an operator reads it ("authentication failed: WRONGPASS ..."),
  // empty once logged in.
  const std::string& last_failure() const;
  std::size_t in_flight() const;
  std::size_t buffered_bytes() const;
  const std::string& where() const { return where_; }
  const connection_options& options() const { return options_; }
  // redis-sentinel://: the primary this connection reached last ("host:port"), else empty.
  const std::string& primary() const { return primary_; }
  const boost::asio::any_io_executor& executor() const { return ex_; }

  struct counters {
    std::uint64_t requests = 0; // requests written
    std::uint64_t writes = 0;   // write operations (one per turn of the loop, at most)
    std::uint64_t connects = 0; // successful connects, first one included
    std::uint64_t timeouts = 0; // connections dropped because a reply was late
  };
  const counters& stats() const;
  // redis-cluster://: the router behind this connection, else null.
  cluster_router* cluster() const { return cluster_.get(); }

  static boost::system::result<reply> single(boost::system::result<response> r);

  class transport; // the byte stream (TCP, unix socket, TLS); defined in connection.cpp

 private:
  struct pending;

  boost::asio::awaitable<void> life();
  boost::asio::awaitable<std::string> connect_and_login();
  boost::asio::awaitable<std::string> open(const redis_endpoint& ep,
                                           std::unique_ptr<transport>& out);
  boost::asio::awaitable<std::string> login(const redis_endpoint& ep);
  boost::asio::awaitable<std::string> find_primary(redis_endpoint& ep);
  boost::asio::awaitable<std::string> ask_sentinel(const redis_endpoint& sentinel,
                                                   redis_endpoint& primary);
  boost::asio::awaitable<void> follow_failovers();
  boost::asio::awaitable<std::string> watch_sentinel(const redis_endpoint& sentinel, bool& said);
  boost::asio::awaitable<void> reader();
  boost::asio::awaitable<void> writer();
  boost::asio::awaitable<void> health();
  boost::asio::awaitable<void> expire_queued(); // completes queued requests past their deadline
  boost::asio::awaitable<void> wait_for_stop();
  boost::asio::awaitable<void> sleep(milliseconds d);
  void complete(pending& p, boost::system::error_code ec);
  std::size_t fail_awaiting(bool timed_out);
  void fail_queued(boost::system::error_code ec);
  void enqueue(pending& p);

  boost::asio::any_io_executor ex_;
  connection_options options_;
  std::string where_;
  connection_state state_;
  std::unique_ptr<transport> transport_;
  reply_parser parser_;
  std::vector<char> read_buffer_;

  // Requests live in their exec() frames; the connection points at them until complete().
  std::deque<pending*> queued_;   // not written yet: safe to send later
  std::deque<pending*> awaiting_; // written, replies outstanding, in order
  std::unique_ptr<pending> ping_; // the health PING, when one is in flight
  std::size_t bytes_ = 0;

  boost::asio::steady_timer writer_wake_; // cancel() = there is something to write
  boost::asio::steady_timer health_wake_; // cancel() = the oldest deadline changed
  boost::asio::steady_timer room_;        // cancel_one() = a request finished
  boost::asio::steady_timer stop_;        // cancel() = stop()
  boost::asio::steady_timer expire_wake_; // cancel() = a queued request has an earlier deadline
  steady_clock::time_point next_expiry_ = steady_clock::time_point::max();
  std::size_t awaiting_with_deadline_ = 0; // awaiting_ entries with a caller's deadline
  boost::system::error_code fatal_;
  std::string last_failure_;
  bool auth_failed_ = false; // the login that just failed was refused for its credentials
  std::int64_t client_id_ = 0;
  std::vector<redis_endpoint::sentinel_address> sentinels_; // the last one that answered first
  std::string primary_;
  bool demoted_ = false; // a reply said the server is a replica now (sentinel mode)
  steady_clock::time_point last_traffic_;
  std::string lost_reason_;
  bool timed_out_ = false;
  bool protocol_error_ = false;
  bool ready_ = false;
  bool writer_idle_ = false;         // the writer waits on writer_wake_
  std::size_t waiting_for_room_ = 0; // exec() calls waiting on room_
  bool running_ = false;
  bool stopped_ = false;
  mutable counters stats_; // a cluster's: summed over its connections when asked
  std::unique_ptr<cluster_router> cluster_;
};

} // namespace forq::redis
