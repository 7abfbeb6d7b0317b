// forq_redis_bench: pipelined SET or GET through one forq::redis::connection, driven by
// `pipeline` coroutines on one single-threaded io_context, the way a forq worker drives Redis.
// Prints one CSV line: name,requests,seconds,requests_per_second,client_cpu_us_per_request
// bench/redis_compare.sh runs it beside redis-benchmark on the same redis-server.
#include "forq/redis/connection.hpp"
#include "log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/resource.h>

namespace {

namespace asio = boost::asio;
using namespace forq::redis;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int usage() {
  std::fprintf(stderr, "usage: forq_redis_bench --url URL [--command set|get] [--requests N] "
                       "[--pipeline P] [--payload BYTES]\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::string url, command = "set";
  long requests = 1000000, pipeline = 64, payload = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url")
      url = v;
    else if (k == "--command")
      command = v;
    else if (k == "--requests")
      requests = std::stol(v);
    else if (k == "--pipeline")
      pipeline = std::stol(v);
    else if (k == "--payload")
      payload = std::stol(v);
    else
      return usage();
  }
  if (url.empty() || (command != "set" && command != "get") || requests <= 0 || pipeline <= 0)
    return usage();
  auto parsed = forq::parse_redis_url(url);
  if (!parsed) {
    std::fprintf(stderr, "forq_redis_bench: %s\n", parsed.error().message().c_str());
    return 2;
  }

  forq::init_logging(forq::log_format::text, forq::log_level::warn, "bench"); // stderr
  asio::io_context ioc(1);
  connection_options o;
  o.endpoint = *parsed;
  o.client_name = client_name("bench");
  connection conn(ioc.get_executor(), o);
  asio::co_spawn(ioc, conn.run(), asio::detached);

  const std::string value(static_cast<std::size_t>(payload), 'x');
  long issued = 0, done = 0, failed = 0;
  std::chrono::steady_clock::time_point start;
  double cpu_start = 0;

  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        // Warm up: connected, key present.
        co_await conn.command("SET", "key:__rand_int__", value);
        start = std::chrono::steady_clock::now();
        cpu_start = cpu_seconds();
        auto ex = co_await asio::this_coro::executor;
        for (long c = 0; c < pipeline; ++c)
          asio::co_spawn(
              ex,
              [&]() -> asio::awaitable<void> {
                // Built once per coroutine, as a worker reuses its requests.
                request set("SET", "key:__rand_int__", value), get("GET", "key:__rand_int__");
                const request& req = command == "set" ? set : get;
                while (issued < requests) {
                  ++issued;
                  auto r = co_await conn.exec(req);
                  if (!r || (*r)[0].is_error()) ++failed;
                  if (++done == requests) conn.stop();
                }
              },
              asio::detached);
      },
      asio::detached);
  ioc.run();

  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto cpu = cpu_seconds() - cpu_start;
  if (failed > 0) {
    std::fprintf(stderr, "forq_redis_bench: %ld of %ld requests failed\n", failed, requests);
    return 1;
  }
  std::printf("forq-%s,%ld,%.3f,%.0f,%.3f\n", command.c_str(), requests, seconds,
              static_cast<double>(requests) / seconds, cpu * 1e6 / static_cast<double>(requests));
  return 0;
}
