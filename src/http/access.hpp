#pragma once

// Who may change things through the HTTP API (docs/http.md, "Access"): a pure decision, tested
// without a socket (tests/unit/http_access_test.cpp); the session carries it out.

#include <boost/asio/ip/address.hpp>

namespace forq::http {

enum class access {
  allowed,
  needs_token,   // 401: api_token is set and the request does not carry it
  loopback_only, // 403: no api_token, not api_open, and the peer is not on this machine
};

// A peer on this machine: 127.0.0.0/8, ::1, or either mapped into IPv6 (::ffff:127.x.y.z).
inline bool is_loopback(const boost::asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4().is_loopback();
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

// changes: the request would change something (anything but GET and HEAD). Reading is open to
// whoever reaches the listener; changing needs the token when there is one, and otherwise a
// loopback peer, unless the operator opened the API on purpose (api_open).
inline access decide_access(bool changes, bool token_set, bool token_matches, bool api_open,
                            const boost::asio::ip::address& peer) {
  if (!changes) return access::allowed;
  if (token_set) return token_matches ? access::allowed : access::needs_token;
  if (api_open || is_loopback(peer)) return access::allowed;
  return access::loopback_only;
}

} // namespace forq::http
