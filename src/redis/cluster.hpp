#pragma once

// Redis Cluster inside the connection (redis-cluster:// URLs): a connection whose endpoint is a
// cluster is a router over plain connections, one per primary it needs. It learns which primary
// owns each of the 16,384 hash slots (CLUSTER SLOTS), sends each command of a request to the
// primary that owns its key, and follows the cluster as it changes: MOVED, ASK, TRYAGAIN,
// CLUSTERDOWN, a demoted primary. See docs/scaling.md and ADR 0014.

#include "forq/redis/connection.hpp"

#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace forq::redis {

inline constexpr std::size_t cluster_slots = 16384;

// The hash slot of a key, as CLUSTER KEYSLOT computes it: CRC16 (XMODEM) of the key's hash tag
// (the text between the first '{' and the next '}', when not empty) or else of the whole key.
std::uint16_t key_slot(std::string_view key);

// One command of a request as forq formats it (RESP arrays of bulk strings).
struct command_span {
  std::size_t offset = 0;            // where its bytes start in the payload
  std::size_t size = 0;              // how many bytes
  std::optional<std::uint16_t> slot; // the slot of its key; none: it has no key
};

// The commands of a request payload, each with the slot of the key it names (the first key:
// forq's commands name one hash tag each). Which argument is the key: the first one, but for
// EVAL/EVALSHA/FCALL (after numkeys, none when 0), XREAD/XREADGROUP (after STREAMS), XINFO,
// OBJECT and MEMORY (the third word), and commands that take no key (PING, WAIT, CLIENT,
// SCRIPT, INFO, TIME, ...). Nothing when the bytes are not such arrays.
std::optional<std::vector<command_span>> split_commands(std::string_view payload);

// What a cluster's reply to one command says about where to send it.
struct redirect {
  enum class kind {
    none,    // an answer: the command ran (or was refused for itself)
    moved,   // MOVED slot host:port: the slot lives there now
    ask,     // ASK slot host:port: this once, there, after ASKING (a slot being migrated)
    wait,    // TRYAGAIN, CLUSTERDOWN: not now; the same node later
    refresh, // the node is not a primary any more (READONLY, a blocked read ended by a
             // failover): ask the cluster again, then send it again
  };
  kind what = kind::none;
  std::uint16_t slot = 0;
  std::string host; // empty: the node that answered
  std::uint16_t port = 0;
};
// Every kind but none means the command did not run: sending it again is safe.
redirect read_redirect(const reply& r);

// "host:port" ("[::1]:7000" for IPv6), the name of a node in the router's maps.
std::string node_address(const std::string& host, std::uint16_t port);
// "host:port" as Redis writes it (an IPv6 host without brackets, or with them) into its parts.
bool split_node_address(std::string_view text, std::string& host, std::uint16_t& port);

// The router behind a connection whose endpoint is a cluster (connection.cpp forwards to it).
// Single-threaded, on the connection's executor, like the connection.
class cluster_router {
 public:
  cluster_router(boost::asio::any_io_executor ex, connection_options options);
  ~cluster_router();
  cluster_router(const cluster_router&) = delete;
  cluster_router& operator=(const cluster_router&) = delete;

  // Learns the slots, keeps them (every `refresh_interval`, and whenever a reply says they
  // moved), and runs the node connections; completes after stop(), once they have all ended.
  boost::asio::awaitable<void> run();
  void stop();

  // As connection::exec. Commands of one request that live on different primaries go to each
  // in turn (one round trip per primary); replies come back in the request's order. A command
  // without a key goes with the keyed command before it (WAIT after a write), else the one
  // after it (SCRIPT LOAD before EVALSHA), else to opts.route's slot, else to any primary.
  boost::asio::awaitable<boost::system::result<connection::response>> exec(const request& req,
                                                                           exec_options opts);

  // The request as it is, to one node ("host:port", as primaries() names them): for what is
  // asked of each node in turn (INFO, SCAN). No redirection is followed.
  boost::asio::awaitable<boost::system::result<connection::response>>
  exec_on(const std::string& addr, const request& req, exec_options opts = {});

  bool ready() const;
  std::int64_t client_id() const;
  void drop(const std::string& reason);
  boost::system::error_code fatal_error() const;
  const std::string& last_failure() const { return last_failure_; }
  std::size_t in_flight() const;
  std::size_t buffered_bytes() const;
  connection::counters stats() const;
  // Which primaries hold slots now ("host:port"), in slot order; for tests and logs.
  std::vector<std::string> primaries() const;

 private:
  struct node {
    std::string host;
    std::uint16_t port = 0;
    std::unique_ptr<connection> conn;
  };
  connection& child(const std::string& host, std::uint16_t port);
  node* find(const std::string& addr);
  boost::asio::awaitable<bool> refresh_once();
  boost::asio::awaitable<bool> wait_refresh(std::optional<steady_clock::time_point> deadline);
  boost::asio::awaitable<void> sleep(milliseconds d);
  void ask_refresh();
  std::string owner(std::optional<std::uint16_t> slot) const; // "" when nobody holds it
  void set_owner(std::uint16_t slot, const std::string& addr);
  void retire_strays();

  boost::asio::any_io_executor ex_;
  connection_options options_;
  std::map<std::string, node> nodes_; // "host:port" -> its connection (primaries, seeds)
  std::vector<std::unique_ptr<connection>> retired_; // stopped, their run() not ended yet
  std::vector<std::string> owners_;                  // index -> "host:port"
  std::vector<std::uint16_t> slots_; // slot -> index into owners_, none_owner when not held
  static constexpr std::uint16_t none_owner = 0xFFFF;
  bool have_map_ = false;
  std::uint64_t refreshes_ = 0; // refresh attempts finished
  bool want_refresh_ = false;
  steady_clock::time_point last_refresh_{};
  std::string last_used_;
  std::unordered_map<std::uint16_t, std::string> sent_to_; // slot -> node its commands went to
  std::string last_failure_;
  std::string map_summary_; // what was logged of the map last
  std::size_t running_children_ = 0;
  bool running_ = false;
  bool stopped_ = false;
  boost::asio::steady_timer wake_;      // cancel(): refresh now (or stop)
  boost::asio::steady_timer refreshed_; // cancel(): a refresh attempt finished (or stop)
  boost::asio::steady_timer children_done_;
};

} // namespace forq::redis
