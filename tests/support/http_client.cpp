#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex>
#include <sys/socket.h>
#include <unistd.h>

namespace forq::test {

int http_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{15, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

http_response http_send_raw(int port, const std::string& raw) {
  http_response r;
  int fd = http_connect(port);
  if (fd < 0) return r;
  for (std::size_t sent = 0; sent < raw.size();) {
    auto n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (in.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(in.substr(9, 3));
  auto end = in.find("\r\n\r\n");
  if (end != std::string::npos) r.body = in.substr(end + 4);
  return r;
}

http_response http_call(int port, const std::string& method, const std::string& path,
                        const std::string& body) {
  return http_send_raw(
      port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n\r\n" + body);
}

int listening_port(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m,
                         std::regex(R"(listening on http://(?:127\.0\.0\.1|0\.0\.0\.0):(\d+))")))
    return 0;
  return std::stoi(m[1]);
}

} // namespace forq::test
