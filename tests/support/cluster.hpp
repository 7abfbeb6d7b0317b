#pragma once

#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace forq::test {

// A Redis Cluster on loopback, as docs/scaling.md describes one: three primaries with
// `replicas` replicas each (`redis-server --cluster-enabled yes --cluster-node-timeout 2000`,
// joined by `redis-cli --cluster create ... --cluster-replicas N`). The constructor returns once
// every node says cluster_state:ok, knows all the others and every replica is in sync, and fails
// the test otherwise; the destructor kills every node however the test ends.
class redis_cluster {
 public:
  static constexpr int node_timeout_ms = 2000;

  explicit redis_cluster(int replicas = 1);

  // redis-cluster://127.0.0.1:P1,127.0.0.1:P2 (two seeds: forq learns the rest)
  std::string url() const;
  std::vector<std::unique_ptr<redis_server>>& servers() { return servers_; }
  redis_server* server_on(std::uint16_t port);
  // The port of the primary that holds `key`'s slot now, as the live nodes say (0: none).
  std::uint16_t primary_of(const std::string& key) const;
  // The port of a replica of the primary on `port` (0: none).
  std::uint16_t replica_of(std::uint16_t port) const;
  // Every primary's port, in slot order.
  std::vector<std::uint16_t> primaries() const;
  // A command to the first live node (for CLUSTER KEYSLOT and the like).
  std::string command(const std::vector<std::string>& argv) const;
  // Until every live node says cluster_state:ok and the primary of `key` is not `old_port`
  // (0: any); false after `limit`.
  bool wait_until_ok(std::chrono::milliseconds limit, const std::string& key = {},
                     std::uint16_t old_port = 0) const;
  bool wait_for_replicas_in_sync(std::chrono::milliseconds limit) const;
  // A queue name (with `prefix`) whose keys live on the primary on `port`.
  std::string queue_on(std::uint16_t port, const std::string& prefix) const;

 private:
  std::vector<std::unique_ptr<redis_server>> servers_;
};

} // namespace forq::test
