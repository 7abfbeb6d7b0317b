// with_connection (connect.hpp): the short-lived commands' way to Redis.
#include "master/connect.hpp"

#include "exit_codes.hpp"
#include "forq/redis_url.hpp"
#include "master/embedded_redis.hpp"
#include "utf8.hpp"
#include "worker/worker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>

namespace forq::master {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

} // namespace

void fail(const std::string& message) {
  std::fprintf(stderr, "forq: %s\n", printable(message).c_str()); // it may quote a job's text
}

int with_connection(const config& cfg, const std::string& url, std::string_view role,
                    std::function<asio::awaitable<int>(redis::connection&)> body) {
  auto parsed = parse_redis_url(url);
  if (!parsed) {
    fail("bad Redis URL " + redact_url(url) + ": " + parsed.error().message());
    return exit_code::fatal;
  }
  asio::io_context ioc(1);
  auto o = worker::redis_options(cfg, *parsed);
  o.client_name = redis::client_name(role);
  redis::connection conn(ioc.get_executor(), o);
  int code = exit_code::failure;
  asio::co_spawn(ioc, conn.run(), asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        // One PING that waits inside the connection for it to come up (no polling): it ends
        // when Redis answers, at the deadline, or at once when Redis refuses the credentials.
        redis::exec_options first;
        const auto patience = o.connect_timeout + 2s;
        first.deadline = std::chrono::steady_clock::now() + patience;
        auto ping = co_await conn.exec(redis::request("PING"), first);
        if (conn.fatal_error()) {
          // The same credentials would be refused again: a usage error, exit 2.
          fail("Redis at " + redact_url(url) + " refused forq's credentials (" +
               conn.last_failure() + "); check the user and password in the Redis URL");
          code = exit_code::fatal;
        } else if (!ping) {
          fail("cannot reach Redis at " + redact_url(url) + " (gave up after " +
               std::to_string(patience.count()) + " ms" +
               (conn.last_failure().empty() ? "" : ": " + conn.last_failure()) + ")");
        } else {
          code = co_await body(conn);
        }
        conn.stop();
      },
      [&](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            fail(std::string("unexpected error: ") + ex.what());
          }
          code = exit_code::failure;
          conn.stop();
        }
      });
  ioc.run();
  return code;
}

int with_redis(const config& cfg, std::function<asio::awaitable<int>(redis::connection&)> body) {
  std::string url = cfg.redis_url;
  if (url.empty()) {
    auto found = find_embedded_redis(cfg.data_dir);
    if (!found) {
      fail("no Redis to talk to: give --redis URL (or FORQ_REDIS_URL), or run `forq serve` with "
           "data directory " +
           cfg.data_dir.string() + " (--data-dir)");
      return exit_code::failure;
    }
    url = *found;
  }
  return with_connection(cfg, url, "cli", std::move(body));
}

} // namespace forq::master
