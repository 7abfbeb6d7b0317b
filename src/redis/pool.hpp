#pragma once

#include "forq/redis/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace forq::redis {

struct pool_options {
  connection_options connection;
  // Connections reserved for blocking commands (XREADGROUP ... BLOCK, BLMOVE, BZPOPMIN), so a
  // blocking read never delays an ack or a health check on the command connection.
  std::size_t blocking_connections = 1;
  // Names the process in CLIENT SETNAME: forq:<host>:<pid>:<role>-cmd, ...-block-0, ...
  std::string role = "worker";
};

// A child's Redis connections: one pipelined command connection shared by every coroutine,
// plus dedicated connections for blocking commands. One pool per process; each connection
// reconnects on its own, and when the command connection finds the server silent (a reply
// late), the blocking connections are dropped and made again too. Blocking connections know
// their CLIENT ID, so a wait can be ended from the command connection (CLIENT UNBLOCK). With a
// sentinel URL the command connection also hears failovers announced (+switch-master) and
// moves every connection of the pool to the new primary.
class pool {
 public:
  pool(boost::asio::any_io_executor ex, pool_options options);

  connection& commands() { return *commands_; }
  connection& blocking(std::size_t i) { return *blocking_.at(i); }
  std::size_t blocking_count() const { return blocking_.size(); }

  // Runs every connection; completes when all have stopped (after stop()).
  boost::asio::awaitable<void> run();
  void stop();
  // Every connection is connected and logged in.
  bool ready() const;

 private:
  boost::asio::any_io_executor ex_;
  std::unique_ptr<connection> commands_;
  std::vector<std::unique_ptr<connection>> blocking_;
};

} // namespace forq::redis
