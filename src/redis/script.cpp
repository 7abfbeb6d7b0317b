#include "redis/script.hpp"

#include <openssl/sha.h>

namespace forq::redis {

namespace {

std::string sha1_hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

request evalsha(const script& s, const std::vector<std::string_view>& keys,
                const std::vector<std::string_view>& args) {
  std::vector<std::string_view> argv;
  argv.reserve(2 + keys.size() + args.size());
  auto nkeys = std::to_string(keys.size());
  argv.push_back(s.sha1());
  argv.push_back(nkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  request req;
  req.push_range("EVALSHA", argv);
  return req;
}

} // namespace

script::script(std::string name, std::string_view source)
    : name_(std::move(name))
    , source_(source)
    , sha1_(sha1_hex(source)) {}

boost::asio::awaitable<boost::system::result<reply>> eval(connection& conn, const script& s,
                                                          const std::vector<std::string_view>& keys,
                                                          const std::vector<std::string_view>& args,
                                                          exec_options opts) {
  auto call = evalsha(s, keys, args);
  auto first = connection::single(co_await conn.exec(call, opts));
  if (!first || !first->is_noscript()) co_return first;

  // Load and call again in one round trip: the pipeline keeps them in order. Twice at most: on
  // a cluster the call can be redirected (MOVED) to a node that does not hold the script yet.
  request load_and_call("SCRIPT", "LOAD", s.source());
  load_and_call.append(call);
  connection::response one;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto both = co_await conn.exec(load_and_call, opts);
    if (!both) co_return both.error();
    auto& replies = *both;
    // The load's error if it failed, else the call's reply. No braced list: GCC 12 miscompiles
    // initializer lists in coroutine frames.
    one.clear();
    one.push_back(std::move(replies[0].is_error() ? replies[0] : replies[1]));
    if (!one.front().is_noscript()) break;
  }
  co_return connection::single(std::move(one));
}

} // namespace forq::redis
