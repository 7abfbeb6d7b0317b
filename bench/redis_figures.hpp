#pragma once

// redis-server's own figures, read with INFO, for the benchmarks in bench/.

#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>

namespace forq::bench {

struct server_figures {
  double cpu_seconds = 0;  // used_cpu_user + used_cpu_sys
  double calls = 0;        // every command, those run inside scripts included
  double command_usec = 0; // time the server spent inside commands
};

inline server_figures parse_info(std::string_view cpu, std::string_view stats) {
  server_figures f;
  auto field = [](std::string_view text, std::string_view name) {
    auto at = text.find(name);
    return at == std::string_view::npos ? 0.0
                                        : std::stod(std::string(text.substr(at + name.size())));
  };
  f.cpu_seconds = field(cpu, "used_cpu_user:") + field(cpu, "used_cpu_sys:");
  std::istringstream lines{std::string(stats)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("cmdstat_") || line.starts_with("cmdstat_info:")) continue;
    f.calls += field(line, "calls=");
    f.command_usec += field(line, ",usec=");
  }
  return f;
}

inline boost::asio::awaitable<server_figures> snapshot(redis::connection& c) {
  redis::request req("INFO", "cpu");
  req.push("INFO", "commandstats");
  auto r = co_await c.exec(req);
  if (!r) throw std::runtime_error("INFO failed: " + r.error().message());
  co_return parse_info((*r)[0].str(), (*r)[1].str());
}

// requests: round trips the client made, when it counted them (0: not counted, not shown).
inline void report(const char* phase, const server_figures& a, const server_figures& b, double jobs,
                   double requests) {
  std::printf("%-8s redis CPU %6.2f us/job   commands %5.2f/job   in-command %5.2f us/job", phase,
              (b.cpu_seconds - a.cpu_seconds) * 1e6 / jobs, (b.calls - a.calls) / jobs,
              (b.command_usec - a.command_usec) / jobs);
  if (requests > 0) std::printf("   requests %5.2f/job", requests / jobs);
  std::printf("\n");
}

} // namespace forq::bench
