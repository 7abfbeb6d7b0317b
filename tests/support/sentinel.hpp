#pragma once

#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace forq::test {

// A Sentinel deployment on loopback, as docs/scaling.md describes one: a primary, two replicas
// and three sentinels (`redis-server CONF --sentinel`) watching it as "forqm" with quorum 2 and
// down-after-milliseconds 1000. The constructor returns once the replicas are in sync and the
// sentinels can fail over (SENTINEL CKQUORUM), and fails the test otherwise; the destructor
// kills everything however the test ends.
class sentinel_group {
 public:
  static constexpr const char* master_name = "forqm";
  static constexpr int down_after_ms = 1000;

  sentinel_group();
  ~sentinel_group();

  // redis-sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/forqm
  std::string url() const;
  // The primary's port as the sentinels name it now (0 if none answers).
  std::uint16_t primary_port() const;
  // The server on that port (servers()[i]), or nullptr.
  redis_server* server_on(std::uint16_t port);
  std::vector<std::unique_ptr<redis_server>>& servers() { return servers_; }
  std::uint16_t sentinel_port(std::size_t i) const { return sentinel_ports_.at(i); }
  // A command to the first sentinel that answers.
  std::string sentinel_command(const std::vector<std::string>& argv) const;
  // Until the sentinels name a primary other than `old_port` that answers ROLE as master;
  // false after `limit`.
  bool wait_for_new_primary(std::uint16_t old_port, std::chrono::milliseconds limit);
  // Until every live replica of the current primary has its link up; false after `limit`.
  bool wait_for_replicas_in_sync(std::chrono::milliseconds limit);

 private:
  temp_dir dir_;
  std::vector<std::unique_ptr<redis_server>> servers_; // [0] starts as the primary
  std::vector<std::uint16_t> sentinel_ports_;
  std::vector<std::unique_ptr<child_process>> sentinels_;
};

} // namespace forq::test
