#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace forq::test {

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool wait_for_replicas_in_sync(const std::vector<std::unique_ptr<redis_server>>& servers,
                               std::chrono::milliseconds limit) {
  return poll_until(limit, [&] {
    for (const auto& s : servers) {
      if (s->pid() < 0) continue;
      auto info = s->command({"INFO", "replication"});
      if (info.find("role:slave") != std::string::npos &&
          info.find("master_link_status:up") == std::string::npos)
        return false;
    }
    return true;
  });
}

std::uint16_t free_cluster_port() {
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = free_port();
    if (port == 0 || port >= 55536) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port + 10000));
    bool bus_free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (bus_free) return port;
  }
  return 0;
}

namespace {

std::string to_text(const redisReply* r) {
  switch (r->type) {
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_ERROR:
    return std::string(r->str, r->len);
  case REDIS_REPLY_INTEGER:
    return std::to_string(r->integer);
  case REDIS_REPLY_NIL:
    return "(nil)";
  case REDIS_REPLY_ARRAY: {
    std::string out = "[";
    for (std::size_t i = 0; i < r->elements; ++i)
      out += (i ? ", " : "") + to_text(r->element[i]);
    return out + "]";
  }
  default:
    return "(?)";
  }
}

std::string run_command(redisContext* c, const std::vector<std::string>& argv) {
  if (!c || c->err) return std::string("connect failed: ") + (c ? c->errstr : "out of memory");
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv)
    args.push_back(a.data()), lens.push_back(a.size());
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  if (!reply) return std::string("I/O error: ") + c->errstr;
  auto text = to_text(reply);
  freeReplyObject(reply);
  return text;
}

} // namespace

bool ping_unix(const std::string& socket_path) {
  timeval tv{1, 0};
  redisContext* c = redisConnectUnixWithTimeout(socket_path.c_str(), tv);
  auto text = run_command(c, {"PING"});
  if (c) redisFree(c);
  return text == "PONG";
}

redis_server::redis_server(std::vector<std::string> extra_args, bool cluster_bus)
    : extra_args_(std::move(extra_args)) {
  for (int attempt = 0; attempt < 5; ++attempt) { // another process may take the port first
    port_ = cluster_bus ? free_cluster_port() : free_port();
    if (try_start()) return;
  }
  ADD_FAILURE() << "could not start a test redis-server; its log: "
                << read_file(dir_ / "redis.log");
}

redis_server::~redis_server() {
  stop();
}

void redis_server::start() {
  if (!try_start())
    ADD_FAILURE() << "could not restart redis-server on port " << port_ << ": "
                  << read_file(dir_ / "redis.log");
}

void redis_server::stop() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_for(10s);
  process_.reset();
}

void redis_server::freeze() const {
  if (process_) process_->signal(SIGSTOP);
}

void redis_server::signal_continue() const {
  if (process_) process_->signal(SIGCONT);
}

bool redis_server::try_start() {
  std::vector<std::string> argv{"/usr/bin/redis-server",
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir_.path().string(),
                                "--logfile",
                                (dir_ / "redis.log").string()};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<child_process>(argv);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) break;
    if (command({"PING"}) == "PONG") return true;
    std::this_thread::sleep_for(10ms);
  }
  process_.reset();
  return false;
}

std::string redis_server::command(const std::vector<std::string>& argv) const {
  return redis_command(port_, argv);
}

std::string redis_command(std::uint16_t port, const std::vector<std::string>& argv) {
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c) redisSetTimeout(c, tv);
  auto text = run_command(c, argv);
  if (c) redisFree(c);
  return text;
}

} // namespace forq::test
