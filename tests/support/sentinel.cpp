#include "support/sentinel.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

namespace forq::test {
namespace {

// The value after `key` in a flat "[k1, v1, k2, v2, ...]" reply as redis_command prints it.
std::string field(const std::string& reply, const std::string& key) {
  auto at = reply.find(", " + key + ", ");
  if (at == std::string::npos) at = reply.find("[" + key + ", ");
  if (at == std::string::npos) return {};
  auto from = reply.find(", ", at + 1) + 2;
  auto to = reply.find_first_of(",]", from);
  return reply.substr(from, to - from);
}

} // namespace

sentinel_group::sentinel_group() {
  servers_.push_back(std::make_unique<redis_server>());
  auto primary = std::to_string(servers_[0]->port());
  for (int i = 0; i < 2; ++i)
    servers_.push_back(std::make_unique<redis_server>(
        std::vector<std::string>{"--replicaof", "127.0.0.1", primary}));
  if (!wait_for_replicas_in_sync(10s)) ADD_FAILURE() << "the replicas did not sync";

  for (int i = 0; i < 3; ++i) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto port = free_port();
      auto conf = dir_ / ("sentinel-" + std::to_string(i) + ".conf");
      write_file(conf, "port " + std::to_string(port) + "\nbind 127.0.0.1\n" + "dir " +
                           dir_.path().string() + "\nlogfile " +
                           (dir_ / ("sentinel-" + std::to_string(i) + ".log")).string() +
                           "\nsentinel monitor " + master_name + " 127.0.0.1 " + primary +
                           " 2\nsentinel down-after-milliseconds " + master_name + " " +
                           std::to_string(down_after_ms) + "\nsentinel failover-timeout " +
                           master_name + " 10000\n");
      auto p = std::make_unique<child_process>(
          std::vector<std::string>{"/usr/bin/redis-server", conf.string(), "--sentinel"});
      if (poll_until(5s,
                     [&] { return redis_command(port, {"PING"}) == "PONG" || !p->running(); }) &&
          p->running()) {
        sentinel_ports_.push_back(port);
        sentinels_.push_back(std::move(p));
        break;
      }
    }
  }
  if (sentinels_.size() != 3) {
    ADD_FAILURE() << "could not start three sentinels";
    return;
  }
  // Each sentinel knows both replicas and the two other sentinels (hello messages, every 2 s).
  bool ready = poll_until(20s, [&] {
    for (auto port : sentinel_ports_) {
      auto m = redis_command(port, {"SENTINEL", "MASTER", master_name});
      if (field(m, "num-slaves") != "2" || field(m, "num-other-sentinels") != "2") return false;
      if (redis_command(port, {"SENTINEL", "CKQUORUM", master_name}).rfind("OK", 0) != 0)
        return false;
    }
    return true;
  });
  if (!ready)
    ADD_FAILURE() << "the sentinels did not find each other and the replicas: "
                  << redis_command(sentinel_ports_[0], {"SENTINEL", "MASTER", master_name});
}

sentinel_group::~sentinel_group() {
  for (auto& s : sentinels_)
    s->signal(SIGKILL);
  for (auto& s : servers_)
    s->signal_continue();
}

std::string sentinel_group::url() const {
  std::string hosts;
  for (auto port : sentinel_ports_)
    hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
  return "redis-sentinel://" + hosts + "/" + master_name;
}

std::string sentinel_group::sentinel_command(const std::vector<std::string>& argv) const {
  std::string last;
  for (auto port : sentinel_ports_) {
    last = redis_command(port, argv);
    if (last.rfind("connect failed", 0) != 0 && last.rfind("I/O error", 0) != 0) return last;
  }
  return last;
}

std::uint16_t sentinel_group::primary_port() const {
  auto addr = sentinel_command({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name});
  auto comma = addr.find(", ");
  if (addr.empty() || addr[0] != '[' || comma == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::stoi(addr.substr(comma + 2)));
}

redis_server* sentinel_group::server_on(std::uint16_t port) {
  for (auto& s : servers_)
    if (s->port() == port) return s.get();
  return nullptr;
}

bool sentinel_group::wait_for_new_primary(std::uint16_t old_port, std::chrono::milliseconds limit) {
  return poll_until(limit, [&] {
    auto port = primary_port();
    return port != 0 && port != old_port && redis_command(port, {"ROLE"}).rfind("[master", 0) == 0;
  });
}

bool sentinel_group::wait_for_replicas_in_sync(std::chrono::milliseconds limit) {
  return forq::test::wait_for_replicas_in_sync(servers_, limit);
}

} // namespace forq::test
