// The least a worker process can spend per job at a low, paced rate: the floor under issue 16's
// "worker <= 20 us of CPU per job at 1,000 jobs/s". Run by bench/round_trip_floor.py, which
// makes the group and paces the producer; see docs/benchmarks.md.
//
//   forq_worker_floor PORT STREAM GROUP JOBS MODE      MODE: blocking | epoll
//
// One consumer of one stream over TCP, with nothing of forq in it: XREADGROUP COUNT 1 BLOCK 0;
// for each job its XACK and the next XREADGROUP go out in one write. `blocking` reads with
// blocking recv() (three system calls a job: the read that sleeps, the write, the read of the
// ack's reply); `epoll` is the least an event loop does (a non-blocking socket, epoll_wait()
// before each read: five). Prints the CPU (user + system) the process used per job from the
// first job to the last.
#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "forq_worker_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

std::string command(const std::vector<std::string_view>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct consumer {
  int fd = -1;
  int epoll_fd = -1; // -1: blocking reads
  redisReader* parser = redisReaderCreate();
  char buffer[65536];

  // The next whole reply; the caller frees it.
  redisReply* next() {
    for (;;) {
      void* r = nullptr;
      if (redisReaderGetReply(parser, &r) != REDIS_OK) {
        std::fprintf(stderr, "forq_worker_floor: malformed reply\n");
        std::exit(1);
      }
      if (r) return static_cast<redisReply*>(r);
      if (epoll_fd >= 0) {
        epoll_event ev{};
        if (epoll_wait(epoll_fd, &ev, 1, -1) < 0 && errno != EINTR) fail("epoll_wait");
      }
      auto n = recv(fd, buffer, sizeof buffer, 0);
      if (n == 0) {
        std::fprintf(stderr, "forq_worker_floor: Redis closed the connection\n");
        std::exit(1);
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        fail("recv");
      }
      redisReaderFeed(parser, buffer, static_cast<size_t>(n));
    }
  }

  void send_all(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      auto n = send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        fail("send");
      }
      done += static_cast<std::size_t>(n);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: forq_worker_floor PORT STREAM GROUP JOBS blocking|epoll\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::string_view stream = argv[2], group = argv[3], mode = argv[5];
  const long jobs = std::atol(argv[4]);
  if (port <= 0 || jobs <= 0 || (mode != "blocking" && mode != "epoll")) {
    std::fprintf(stderr, "forq_worker_floor: bad arguments\n");
    return 2;
  }

  consumer c;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c.fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) fail("connect");
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (mode == "epoll") {
    c.epoll_fd = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (epoll_ctl(c.epoll_fd, EPOLL_CTL_ADD, c.fd, &ev) < 0) fail("epoll_ctl");
    if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) < 0) fail("fcntl");
  }

  const std::string fetch = command(
      {"XREADGROUP", "GROUP", group, "floor", "COUNT", "1", "BLOCK", "0", "STREAMS", stream, ">"});
  c.send_all(fetch);
  std::puts("ready");
  std::fflush(stdout);

  double started = 0;
  for (long n = 0; n < jobs; ++n) {
    redisReply* r = c.next(); // [[stream, [[id, fields]]]]
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
      std::fprintf(stderr, "forq_worker_floor: unexpected reply to XREADGROUP\n");
      return 1;
    }
    if (n == 0) started = cpu_seconds();
    const redisReply* entry = r->element[0]->element[1]->element[0];
    std::string id(entry->element[0]->str, entry->element[0]->len);
    freeReplyObject(r);
    std::string out = command({"XACK", stream, group, id});
    if (n + 1 < jobs) out += fetch;
    c.send_all(out);
    freeReplyObject(c.next()); // the XACK's reply
  }
  const double used = cpu_seconds() - started;
  std::printf("%.2f\n", jobs > 1 ? used / static_cast<double>(jobs - 1) * 1e6 : 0.0);
  return 0;
}
