#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace forq::test {

// What the fake server does with one command.
struct fake_action {
  enum class kind {
    reply,            // write `bytes` (split in two writes at `split_at` if non-zero)
    close,            // close the connection without answering
    reply_then_close, // write `bytes` (a partial reply, say) and close
    silence,          // never answer this command
  };
  kind what = kind::reply;
  std::string bytes;
  std::size_t split_at = 0;
  std::chrono::milliseconds delay{0}; // wait this long before answering

  static fake_action raw(std::string bytes) { return {kind::reply, std::move(bytes)}; }
  static fake_action status(const std::string& s) { return raw("+" + s + "\r\n"); }
  static fake_action error(const std::string& s) { return raw("-" + s + "\r\n"); }
  static fake_action bulk(const std::string& s) {
    return raw("$" + std::to_string(s.size()) + "\r\n" + s + "\r\n");
  }
  static fake_action integer(long long v) { return raw(":" + std::to_string(v) + "\r\n"); }
  static fake_action close_now() { return {kind::close, {}}; }
  static fake_action never() { return {kind::silence, {}}; }
};

struct fake_command {
  std::vector<std::string> argv;
  std::size_t connection; // 0 for the first connection the server accepted
  std::size_t op;         // 0 for the first command the server received, on any connection
};

// A RESP server on a loopback port, scripted per command, for faults a real Redis does not
// produce on demand (a reply cut in half, a reply that never comes, garbage). It speaks real
// RESP: commands are parsed with the same hiredis reader forq uses for replies. It runs on the
// test's own executor; stop() closes everything.
class fake_redis {
 public:
  using script = std::function<fake_action(const fake_command&)>;

  // port 0: a free one.
  fake_redis(boost::asio::any_io_executor ex, script s, std::uint16_t port = 0);
  ~fake_redis();

  std::uint16_t port() const { return port_; }
  void stop();

  // The answer a plain Redis would give to the login commands, PING and ECHO; +OK otherwise.
  static fake_action standard(const fake_command& c);

  const std::vector<fake_command>& commands() const;
  std::size_t connections() const;
  // The most commands answered late at once (received, reply not yet written).
  std::size_t max_outstanding() const;

  struct shared; // what sessions share with the server, alive as long as any of them

 private:
  std::shared_ptr<shared> state_;
  std::uint16_t port_ = 0;
};

} // namespace forq::test
