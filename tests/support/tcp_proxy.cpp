#include "support/tcp_proxy.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <list>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace forq::test {

namespace {

using clock_type = std::chrono::steady_clock;

// Bytes read from one end, each chunk due at the other end at its time.
struct direction {
  std::deque<std::pair<clock_type::time_point, std::string>> chunks;
  std::size_t written = 0; // of the front chunk

  bool due(clock_type::time_point now) const {
    return !chunks.empty() && chunks.front().first <= now;
  }
};

struct link {
  int client = -1; // forq's end
  int server = -1; // Redis's end
  bool silenced = false;
  direction to_server, to_client;
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Closes with RST rather than FIN: the peer sees "connection reset".
void reset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int connect_upstream(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  return fd;
}

// Reads what `from` has; false when it is closed or failed.
bool pull(int from, direction& into, bool discard, std::chrono::milliseconds delay) {
  char buf[65536];
  for (;;) {
    auto n = ::recv(from, buf, sizeof buf, 0);
    if (n > 0) {
      if (!discard) into.chunks.emplace_back(clock_type::now() + delay, std::string(buf, n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// Writes the chunks that are due; false when `to` failed.
bool push(int to, direction& from, clock_type::time_point now) {
  while (from.due(now)) {
    auto& chunk = from.chunks.front().second;
    auto n = ::send(to, chunk.data() + from.written, chunk.size() - from.written, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    from.written += static_cast<std::size_t>(n);
    if (from.written < chunk.size()) return true;
    from.chunks.pop_front();
    from.written = 0;
  }
  return true;
}

} // namespace

struct tcp_proxy::state {
  std::chrono::milliseconds delay{0};
  bool refusing = false;
  bool silencing = false;
  bool stopping = false;
  std::size_t accepted = 0;
  std::list<link> links;
  // Commands from the test, run by the proxy's thread between two polls; `done` counts them.
  std::vector<std::function<void(state&)>> commands;
  std::uint64_t issued = 0, done = 0;
  std::condition_variable ran;

  void drop(link& l, bool rst) {
    if (rst) {
      reset(l.client);
      reset(l.server);
      l.client = l.server = -1;
    } else {
      close_fd(l.client);
      close_fd(l.server);
    }
  }
};

tcp_proxy::tcp_proxy(std::uint16_t upstream_port)
    : upstream_(upstream_port)
    , state_(new state) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_, 128) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    ADD_FAILURE() << "tcp_proxy: cannot listen: " << std::strerror(errno);
  port_ = ntohs(a.sin_port);
  set_nonblocking(listener_);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) ADD_FAILURE() << "tcp_proxy: pipe2";
  thread_ = std::thread([this] { loop(); });
}

tcp_proxy::~tcp_proxy() {
  {
    std::lock_guard lock(mutex_);
    state_->stopping = true;
  }
  wake();
  thread_.join();
  for (auto& l : state_->links)
    state_->drop(l, false);
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  delete state_;
}

void tcp_proxy::wake() {
  char c = 1;
  [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
}

void tcp_proxy::apply(std::function<void(state&)> command) {
  std::unique_lock lock(mutex_);
  state_->commands.push_back(std::move(command));
  auto ticket = ++state_->issued;
  lock.unlock();
  wake();
  lock.lock();
  state_->ran.wait(lock, [&] { return state_->done >= ticket; });
}

void tcp_proxy::delay(std::chrono::milliseconds each_way) {
  apply([each_way](state& s) { s.delay = each_way; });
}

void tcp_proxy::cut() {
  apply([](state& s) {
    for (auto& l : s.links)
      s.drop(l, true);
    s.links.clear();
  });
}

void tcp_proxy::refuse(bool on) {
  apply([on](state& s) { s.refusing = on; });
}

void tcp_proxy::silence(bool on) {
  apply([on](state& s) {
    s.silencing = on;
    if (on)
      for (auto& l : s.links) {
        l.silenced = true;
        l.to_client.chunks.clear(); // what was on its way is lost with the peer
        l.to_server.chunks.clear();
      }
  });
}

std::size_t tcp_proxy::accepted() const {
  std::lock_guard lock(mutex_);
  return state_->accepted;
}

std::size_t tcp_proxy::passing() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& l : state_->links)
    n += l.silenced ? 0 : 1;
  return n;
}

void tcp_proxy::loop() {
  std::unique_lock lock(mutex_);
  auto& s = *state_;
  std::vector<pollfd> fds;
  for (;;) {
    for (auto& c : s.commands)
      c(s);
    s.done += s.commands.size();
    s.commands.clear();
    s.ran.notify_all();
    if (s.stopping) return;

    auto now = clock_type::now();
    auto next = now + std::chrono::milliseconds(50);
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listener_, POLLIN, 0});
    for (auto& l : s.links) {
      short to_client = l.to_client.due(now) ? POLLOUT : 0;
      short to_server = l.to_server.due(now) ? POLLOUT : 0;
      fds.push_back({l.client, static_cast<short>(POLLIN | to_client), 0});
      fds.push_back({l.server, static_cast<short>(POLLIN | to_server), 0});
      for (auto* d : {&l.to_client, &l.to_server})
        if (!d->chunks.empty() && !d->due(now)) next = std::min(next, d->chunks.front().first);
    }
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    lock.unlock();
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait_ms, 0)));
    lock.lock();

    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[1].revents & POLLIN)
      for (;;) {
        int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) break;
        ++s.accepted;
        if (s.refusing) {
          reset(c);
          continue;
        }
        int up = connect_upstream(upstream_);
        if (up < 0) { // Redis is not there: neither is the proxy's end
          reset(c);
          continue;
        }
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s.links.push_back(link{c, up, s.silencing, {}, {}});
      }

    // Links added by the accept above have no pollfd yet: they are served from the next poll.
    std::size_t i = 2;
    now = clock_type::now();
    for (auto it = s.links.begin(); it != s.links.end();) {
      auto& l = *it;
      if (i >= fds.size() || fds[i].fd != l.client) break;
      short client_ev = fds[i].revents, server_ev = fds[i + 1].revents;
      i += 2;
      bool alive = true;
      if (client_ev & (POLLIN | POLLHUP | POLLERR))
        alive = pull(l.client, l.to_server, l.silenced, s.delay);
      if (alive && l.server >= 0 && (server_ev & (POLLIN | POLLHUP | POLLERR))) {
        if (!pull(l.server, l.to_client, l.silenced, s.delay)) {
          if (l.silenced)
            close_fd(l.server); // the peer is gone anyway: say nothing
          else
            alive = false;
        }
      }
      if (alive && !l.silenced)
        alive = push(l.server, l.to_server, now) && push(l.client, l.to_client, now);
      if (!alive) {
        s.drop(l, false);
        it = s.links.erase(it);
      } else {
        ++it;
      }
    }
  }
}

} // namespace forq::test
