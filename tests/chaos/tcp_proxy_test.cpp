// The proxy the network chaos tests put between forq and Redis (tests/support/tcp_proxy.hpp)
// does what they assume of it: passes bytes, delays them, resets, refuses and goes silent.
#include "support/redis_server.hpp"
#include "support/tcp_proxy.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

// A plain TCP client of the proxy.
class client {
 public:
  explicit client(std::uint16_t port)
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~client() { ::close(fd_); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends an inline PING and reads the answer for up to `wait`: "+PONG\r\n", "" (nothing came),
  // or "closed" / "reset".
  std::string ping(std::chrono::milliseconds wait) {
    if (!connected_) return "closed";
    if (::send(fd_, "PING\r\n", 6, MSG_NOSIGNAL) != 6)
      return errno == ECONNRESET ? "reset" : "closed";
    std::string got;
    auto until = std::chrono::steady_clock::now() + wait;
    while (got.find("\r\n") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left <= 0ms) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return "closed";
      if (n < 0) return errno == ECONNRESET ? "reset" : "closed";
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class tcp_proxy_test : public forq::test::redis_test {
 protected:
  forq::test::tcp_proxy proxy_{redis_.port()};
};

TEST_F(tcp_proxy_test, passes_bytes_both_ways) {
  client c(proxy_.port());
  EXPECT_EQ(c.ping(2s), "+PONG\r\n");
  EXPECT_EQ(proxy_.accepted(), 1u);
  EXPECT_EQ(proxy_.passing(), 1u);
}

TEST_F(tcp_proxy_test, delays_each_way) {
  proxy_.delay(100ms);
  client c(proxy_.port());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.ping(2s), "+PONG\r\n");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
}

TEST_F(tcp_proxy_test, cut_resets_open_connections_and_new_ones_work) {
  client c(proxy_.port());
  ASSERT_EQ(c.ping(2s), "+PONG\r\n");
  proxy_.cut();
  EXPECT_EQ(c.ping(2s), "reset");
  client d(proxy_.port());
  EXPECT_EQ(d.ping(2s), "+PONG\r\n");
}

TEST_F(tcp_proxy_test, refuse_resets_new_connections_until_it_is_lifted) {
  proxy_.refuse(true);
  client c(proxy_.port());
  auto answer = c.ping(2s);
  EXPECT_TRUE(answer == "reset" || answer == "closed") << answer;
  proxy_.refuse(false);
  client d(proxy_.port());
  EXPECT_EQ(d.ping(2s), "+PONG\r\n");
}

TEST_F(tcp_proxy_test, silence_keeps_connections_open_and_answers_nothing_for_good) {
  client c(proxy_.port());
  ASSERT_EQ(c.ping(2s), "+PONG\r\n");
  proxy_.silence(true);
  EXPECT_EQ(c.ping(300ms), "");
  client d(proxy_.port()); // opened while silent: silent too
  EXPECT_EQ(d.ping(300ms), "");
  EXPECT_EQ(proxy_.passing(), 0u);
  proxy_.silence(false);
  EXPECT_EQ(c.ping(300ms), ""); // never again
  EXPECT_EQ(d.ping(300ms), "");
  client e(proxy_.port());
  EXPECT_EQ(e.ping(2s), "+PONG\r\n");
}

} // namespace
