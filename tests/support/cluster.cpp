#include "support/cluster.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>

namespace forq::test {
namespace {

using namespace std::chrono_literals;

// The lines of CLUSTER NODES, each split into words.
std::vector<std::vector<std::string>> nodes_of(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;)
      w.push_back(x);
    if (w.size() >= 8) out.push_back(std::move(w));
  }
  return out;
}

std::uint16_t port_of(const std::string& addr) { // 127.0.0.1:7000@17000
  auto colon = addr.rfind(':');
  auto at = addr.find('@');
  return static_cast<std::uint16_t>(std::stoi(addr.substr(colon + 1, at - colon - 1)));
}

} // namespace

redis_cluster::redis_cluster(int replicas) {
  for (int i = 0; i < 3 * (1 + replicas); ++i)
    servers_.push_back(std::make_unique<redis_server>(
        std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-node-timeout",
                                 std::to_string(node_timeout_ms), "--cluster-config-file",
                                 "nodes.conf"},
        true));
  std::vector<std::string> argv{"/usr/bin/redis-cli", "--cluster", "create"};
  for (auto& s : servers_)
    argv.push_back("127.0.0.1:" + std::to_string(s->port()));
  argv.push_back("--cluster-replicas");
  argv.push_back(std::to_string(replicas));
  argv.push_back("--cluster-yes");
  auto r = run(argv);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "redis-cli --cluster create failed: " << r.out << r.err;
    return;
  }
  bool all_known = poll_until(20s, [&] {
    for (auto& s : servers_)
      if (nodes_of(s->command({"CLUSTER", "NODES"})).size() != servers_.size()) return false;
    return true;
  });
  if (!all_known || !wait_until_ok(20s) || !wait_for_replicas_in_sync(20s))
    ADD_FAILURE() << "the cluster did not come up: " << command({"CLUSTER", "NODES"});
}

std::string redis_cluster::url() const {
  return "redis-cluster://127.0.0.1:" + std::to_string(servers_[0]->port()) +
         ",127.0.0.1:" + std::to_string(servers_[1]->port());
}

redis_server* redis_cluster::server_on(std::uint16_t port) {
  for (auto& s : servers_)
    if (s->port() == port) return s.get();
  return nullptr;
}

std::string redis_cluster::command(const std::vector<std::string>& argv) const {
  std::string last;
  for (const auto& s : servers_) {
    if (s->pid() < 0) continue;
    last = s->command(argv);
    if (last.rfind("connect failed", 0) != 0 && last.rfind("I/O error", 0) != 0) return last;
  }
  return last;
}

std::uint16_t redis_cluster::primary_of(const std::string& key) const {
  auto slot = std::stoi(command({"CLUSTER", "KEYSLOT", key}));
  for (const auto& n : nodes_of(command({"CLUSTER", "NODES"}))) {
    if (n[2].find("master") == std::string::npos || n[2].find("fail") != std::string::npos)
      continue;
    for (std::size_t i = 8; i < n.size(); ++i) {
      if (n[i].front() == '[') continue; // a slot being migrated
      auto dash = n[i].find('-');
      int from = std::stoi(n[i].substr(0, dash));
      int to = dash == std::string::npos ? from : std::stoi(n[i].substr(dash + 1));
      if (slot >= from && slot <= to) return port_of(n[1]);
    }
  }
  return 0;
}

std::uint16_t redis_cluster::replica_of(std::uint16_t port) const {
  auto nodes = nodes_of(command({"CLUSTER", "NODES"}));
  std::string id;
  for (const auto& n : nodes)
    if (port_of(n[1]) == port) id = n[0];
  for (const auto& n : nodes)
    if (n[3] == id && n[2].find("slave") != std::string::npos &&
        n[2].find("fail") == std::string::npos)
      return port_of(n[1]);
  return 0;
}

std::vector<std::uint16_t> redis_cluster::primaries() const {
  std::vector<std::uint16_t> out;
  for (const auto& n : nodes_of(command({"CLUSTER", "NODES"})))
    if (n[2].find("master") != std::string::npos && n.size() > 8 &&
        n[2].find("fail") == std::string::npos)
      out.push_back(port_of(n[1]));
  return out;
}

bool redis_cluster::wait_until_ok(std::chrono::milliseconds limit, const std::string& key,
                                  std::uint16_t old_port) const {
  return poll_until(limit, [&] {
    for (const auto& s : servers_) {
      if (s->pid() < 0) continue;
      if (s->command({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos)
        return false;
    }
    if (key.empty()) return true;
    auto p = primary_of(key);
    return p != 0 && p != old_port;
  });
}

bool redis_cluster::wait_for_replicas_in_sync(std::chrono::milliseconds limit) const {
  return forq::test::wait_for_replicas_in_sync(servers_, limit);
}

std::string redis_cluster::queue_on(std::uint16_t port, const std::string& prefix) const {
  for (int i = 0; i < 1000; ++i) {
    auto name = prefix + std::to_string(i);
    if (primary_of("forq:{" + name + "}:x") == port) return name;
  }
  ADD_FAILURE() << "no queue name lands on port " << port;
  return prefix;
}

} // namespace forq::test
