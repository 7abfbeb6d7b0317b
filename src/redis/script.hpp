#pragma once

#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace forq::redis {

// A Lua script known at build time (its source is embedded from a .lua file in the tree, see
// cmake/forq_embed_lua.cmake). Its SHA1 is computed once, here.
class script {
 public:
  script(std::string name, std::string_view source);
  const std::string& name() const { return name_; }
  const std::string& sha1() const { return sha1_; }
  std::string_view source() const { return source_; }

 private:
  std::string name_;
  std::string_view source_;
  std::string sha1_;
};

// EVALSHA, so the source crosses the wire once per server. A -NOSCRIPT reply (the server
// restarted or ran SCRIPT FLUSH) loads the script with SCRIPT LOAD and calls it again, once.
// Completes like connection::command(): -LOADING and friends become errc::redis_retry_later,
// other error replies (a script's own error) are returned as replies.
boost::asio::awaitable<boost::system::result<reply>> eval(connection& conn, const script& s,
                                                          const std::vector<std::string_view>& keys,
                                                          const std::vector<std::string_view>& args,
                                                          exec_options opts = {});

} // namespace forq::redis
