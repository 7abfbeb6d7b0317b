// The Redis connection and pool against a real redis-server: pipelining under load, dropped
// connections, a restarted server, ACL login, SELECT, unix sockets, TLS, and scripts.
#include "forq/redis/connection.hpp"
#include "log.hpp"
#include "redis/pool.hpp"
#include "redis/script.hpp"
#include "support/async_test.hpp"
#include "support/log_capture.hpp"
#include "support/redis_server.hpp"
#include "test_lua.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <sstream>

namespace {

namespace asio = boost::asio;
using namespace forq::redis;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::errc;
using forq::test::redis_server;
using forq::test::redis_test;

using forq::test::sleep_for;

connection_options options_for(const std::string& url) {
  connection_options o;
  auto parsed = forq::parse_redis_url(url);
  if (!parsed)
    ADD_FAILURE() << parsed.error().message();
  else
    o.endpoint = *parsed;
  o.client_name = client_name("test");
  o.connect_timeout = 2s;
  o.command_timeout = 2s;
  o.reconnect = {20ms, 200ms};
  return o;
}

// Runs body with a running connection, then stops it; under a deadline.
void with_connection(const connection_options& o,
                     std::function<asio::awaitable<void>(connection&)> body,
                     std::chrono::milliseconds deadline = 20s) {
  forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        connection conn(co_await asio::this_coro::executor, o);
        auto test = [&]() -> asio::awaitable<void> {
          co_await body(conn);
          conn.stop();
        };
        co_await (conn.run() && test());
      },
      deadline);
}

std::string text(const boost::system::result<reply>& r) {
  return r ? r->to_string() : "error: " + r.error().message();
}

TEST_F(redis_test, a_hundred_coroutines_pipeline_and_every_reply_finds_its_request) {
  with_connection(options_for(redis_.url()), [](connection& conn) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int finished = 0, mismatched = 0;
    for (int c = 0; c < 100; ++c)
      asio::co_spawn(
          ex,
          [&, c]() -> asio::awaitable<void> {
            for (int i = 0; i < 50; ++i) {
              auto payload = "coroutine " + std::to_string(c) + " request " + std::to_string(i);
              request req("ECHO", payload);
              req.push("INCR", "counter");
              auto r = co_await conn.exec(req);
              if (!r || (*r)[0].str() != payload || !(*r)[1].as_integer()) ++mismatched;
            }
            ++finished;
          },
          asio::detached);
    while (finished < 100)
      co_await sleep_for(1ms);
    EXPECT_EQ(mismatched, 0);
    EXPECT_EQ(text(co_await conn.command("GET", "counter")), "\"5000\"");
    // Pipelined: requests made in the same turn share one write.
    EXPECT_GE(conn.stats().requests, 5001u); // 5000 requests and the GET (and any health PING)
    EXPECT_LT(conn.stats().writes * 10, conn.stats().requests)
        << conn.stats().writes << " writes for " << conn.stats().requests << " requests";
  });
}

TEST_F(redis_test, client_kill_then_later_requests_succeed) {
  with_connection(options_for(redis_.url()), [&](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("SET", "k", "1")), "OK");
    EXPECT_EQ(redis_.command({"CLIENT", "KILL", "TYPE", "normal"}), "1");
    int lost = 0;
    boost::system::result<reply> r = boost::system::error_code(errc::redis_connection_lost);
    for (int i = 0; i < 5 && !r; ++i) {
      r = co_await conn.command("GET", "k");
      if (!r) ++lost;
    }
    EXPECT_EQ(text(r), "\"1\"");
    EXPECT_LE(lost, 1); // at most the request that met the dead socket
    EXPECT_EQ(conn.stats().connects, 2u);
  });
}

TEST_F(redis_test, a_restarted_server_is_reconnected_within_the_backoff_bound) {
  auto o = options_for(redis_.url());
  o.reconnect = {20ms, 300ms};
  with_connection(o, [&](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("PING")), "PONG");
    redis_.stop();
    co_await sleep_for(1s); // several failed attempts: the backoff reaches its bound
    EXPECT_FALSE(conn.ready());
    redis_.start();
    auto back = std::chrono::steady_clock::now();
    // Queued while disconnected: it waits, then goes out on the new connection.
    auto r = co_await conn.command("PING");
    auto waited = std::chrono::steady_clock::now() - back;
    EXPECT_EQ(text(r), "PONG");
    EXPECT_LT(waited, 300ms + 500ms) << "reconnect took longer than the backoff bound allows";
    EXPECT_TRUE(conn.ready());
  });
}

TEST_F(redis_test, acl_user_logs_in_and_a_wrong_password_is_reported) {
  EXPECT_EQ(redis_.command({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all"}), "OK");
  auto url = "redis://app:s3cret@127.0.0.1:" + std::to_string(redis_.port());
  with_connection(options_for(url), [](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("ACL", "WHOAMI")), "\"app\"");
  });

  forq::test::log_capture log;
  auto bad = "redis://app:wrong@127.0.0.1:" + std::to_string(redis_.port());
  with_connection(options_for(bad), [](connection& conn) -> asio::awaitable<void> {
    co_await sleep_for(300ms);
    EXPECT_FALSE(conn.ready());
  });
  // Said as what it is, once: retrying cannot help (issue 13).
  EXPECT_NE(log.text().find("refused forq's credentials (authentication failed: WRONGPASS"),
            std::string::npos)
      << log.text();
  EXPECT_EQ(log.text().find("unreachable"), std::string::npos) << log.text();
  EXPECT_EQ(log.text().find("wrong"), std::string::npos) << "the password was logged";
}

TEST_F(redis_test, select_and_client_name_are_set_at_login) {
  with_connection(options_for(redis_.url() + "/3"), [&](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("SET", "in-db-3", "yes")), "OK");
    auto info = co_await conn.command("CLIENT", "INFO");
    FORQ_CO_ASSERT(info);
    EXPECT_NE(info->str().find(" db=3 "), std::string::npos) << info->str();
    EXPECT_NE(info->str().find(" name=forq:"), std::string::npos) << info->str();
    EXPECT_NE(info->str().find(":test "), std::string::npos) << info->str();
  });
  EXPECT_EQ(redis_.command({"EXISTS", "in-db-3"}), "0"); // not in db 0
}

TEST_F(redis_test, a_host_name_is_resolved) {
  with_connection(options_for("redis://localhost:" + std::to_string(redis_.port())),
                  [](connection& conn) -> asio::awaitable<void> {
                    EXPECT_EQ(text(co_await conn.command("PING")), "PONG");
                  });
}

TEST(redis_connection, unix_socket) {
  forq::test::temp_dir dir;
  auto socket = (dir / "r.sock").string();
  redis_server redis({"--unixsocket", socket, "--unixsocketperm", "700"});
  with_connection(options_for("unix://" + socket), [](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("PING")), "PONG");
    EXPECT_EQ(conn.where().find("redis /tmp/"), 0u) << conn.where();
  });
}

TEST(redis_connection, tls_with_a_certificate_made_for_the_test) {
  forq::test::temp_dir dir;
  auto made = forq::test::run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                               "-keyout", (dir / "key.pem").string(), "-out",
                               (dir / "cert.pem").string(), "-days", "1", "-subj", "/CN=localhost",
                               "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto tls_port = forq::test::free_port();
  redis_server redis({"--tls-port", std::to_string(tls_port), "--tls-cert-file",
                      (dir / "cert.pem").string(), "--tls-key-file", (dir / "key.pem").string(),
                      "--tls-ca-cert-file", (dir / "cert.pem").string(), "--tls-auth-clients",
                      "no"});
  auto o = options_for("rediss://127.0.0.1:" + std::to_string(tls_port));
  o.tls_ca_file = (dir / "cert.pem").string();
  with_connection(o, [](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await conn.command("PING")), "PONG");
    auto info = co_await conn.command("CLIENT", "INFO");
    FORQ_CO_ASSERT(info);
    EXPECT_NE(info->str().find("flags=N"), std::string::npos);
  });

  // Without the test CA the certificate is not trusted: no connection, a clear reason.
  forq::test::log_capture log;
  o.tls_ca_file.clear();
  with_connection(o, [](connection& conn) -> asio::awaitable<void> {
    co_await sleep_for(300ms);
    EXPECT_FALSE(conn.ready());
  });
  EXPECT_NE(log.text().find("TLS handshake failed: certificate verify failed"), std::string::npos)
      << log.text();
}

TEST_F(redis_test, a_blocking_read_in_the_pool_never_delays_the_command_connection) {
  forq::test::run_async([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    forq::redis::pool_options po;
    po.connection = options_for(redis_.url());
    po.blocking_connections = 1;
    po.role = "worker-1";
    pool p(ex, po);
    auto test = [&]() -> asio::awaitable<void> {
      std::optional<boost::system::result<reply>> popped;
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            popped =
                connection::single(co_await p.blocking(0).exec(request("BLPOP", "jobs", "5"), 5s));
          },
          asio::detached);
      co_await sleep_for(50ms);
      auto start = std::chrono::steady_clock::now();
      EXPECT_EQ(text(co_await p.commands().command("PING")), "PONG");
      EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "PING waited behind BLPOP";
      EXPECT_FALSE(popped) << "BLPOP returned before anything was pushed";
      EXPECT_EQ(text(co_await p.commands().command("LPUSH", "jobs", "j1")), "(integer) 1");
      while (!popped)
        co_await sleep_for(1ms);
      EXPECT_EQ(text(*popped), "[\"jobs\", \"j1\"]");
      EXPECT_TRUE(p.ready());
      auto clients = co_await p.commands().command("CLIENT", "LIST");
      FORQ_CO_ASSERT(clients);
      EXPECT_NE(clients->str().find(":worker-1-cmd "), std::string::npos) << clients->str();
      EXPECT_NE(clients->str().find(":worker-1-block-0 "), std::string::npos) << clients->str();
      p.stop();
    };
    co_await (p.run() && test());
  });
}

TEST_F(redis_test, a_script_survives_script_flush) {
  script add_and_get("add_and_get", forq::test::lua::add_and_get_lua);
  // Built outside the coroutine: GCC 12 cannot hold initializer lists in a coroutine frame.
  const std::vector<std::string_view> keys{"total"}, two{"2"}, five{"5"};
  with_connection(options_for(redis_.url()), [&](connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(text(co_await eval(conn, add_and_get, keys, two)), "(integer) 2");
    EXPECT_EQ(redis_.command({"SCRIPT", "FLUSH"}), "OK");
    EXPECT_EQ(text(co_await eval(conn, add_and_get, keys, five)), "(integer) 7");
    EXPECT_EQ(redis_.command({"SCRIPT", "EXISTS", add_and_get.sha1()}), "[1]");
  });
}

} // namespace
