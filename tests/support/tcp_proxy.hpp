#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace forq::test {

// A TCP proxy on a free loopback port in front of 127.0.0.1:<upstream>, run by a thread of the
// test, so that a test can break the network between forq and Redis on demand:
//   delay(d)      every byte waits d before it is passed on, in both directions
//   cut()         every open connection is reset (RST to both ends) now
//   refuse(on)    while on, a new connection is accepted and reset at once
//   silence(on)   while on, every connection open or opened meanwhile goes silent for good: it
//                 stays open and swallows what it is sent, and nothing ever comes back (a
//                 half-open connection whose peer is gone). Off: new connections work again;
//                 the silenced ones never do.
// The destructor closes everything.
class tcp_proxy {
 public:
  explicit tcp_proxy(std::uint16_t upstream_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  void delay(std::chrono::milliseconds each_way);
  void cut();
  void refuse(bool on);
  void silence(bool on);

  // Connections accepted so far, and those open now that still pass bytes (not silenced).
  std::size_t accepted() const;
  std::size_t passing() const;

 private:
  struct state;
  void apply(std::function<void(state&)> command); // on the proxy's thread; waits for it
  void loop();
  void wake();

  std::uint16_t upstream_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  mutable std::mutex mutex_;
  state* state_ = nullptr;
  std::thread thread_;
};

} // namespace forq::test
