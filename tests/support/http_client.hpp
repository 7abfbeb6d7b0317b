#pragma once

// A minimal HTTP/1.1 client over a blocking loopback socket, for tests of forq's HTTP surface:
// one request per connection (Connection: close), or raw bytes for malformed requests.
#include <string>

namespace forq::test {

struct http_response {
  int status = 0; // 0: no HTTP answer (connection refused or closed)
  std::string body;
};

// A connected socket to 127.0.0.1:port (receive timeout 15 s), or -1.
int http_connect(int port);
// Sends `raw` as is and reads until the server closes.
http_response http_send_raw(int port, const std::string& raw);
http_response http_call(int port, const std::string& method, const std::string& path,
                        const std::string& body = "");
// The port in forq serve's "listening on http://127.0.0.1:PORT" (or 0.0.0.0) log line, or 0.
int listening_port(const std::string& log);

} // namespace forq::test
