#include "redis/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace forq::redis {

namespace asio = boost::asio;

pool::pool(asio::any_io_executor ex, pool_options options)
    : ex_(std::move(ex)) {
  auto make = [&](const std::string& suffix, std::uint64_t seed_offset, bool blocking) {
    auto o = options.connection;
    o.client_name = client_name(options.role + "-" + suffix);
    if (o.seed) o.seed += seed_offset;
    if (blocking) {
      o.want_client_id = true; // a consumer's stop() ends its wait with CLIENT UNBLOCK
      // Cluster: each follows one queue's primary, and learns of a move from the replies.
      o.cluster_refresh = milliseconds(0);
    } else {
      // A connection waiting in a blocking command hears nothing for as long as it blocks,
      // silent server or not: when the command connection finds the server silent, the
      // blocking ones are dropped with it, so a long wait does not hide a dead server.
      o.on_silent = [this](const std::string& why) {
        for (auto& b : blocking_)
          b->drop("the command connection got " + why);
      };
      // Sentinel: the command connection hears failovers announced, and moves the blocking
      // ones too (a wait on a partitioned old primary would not end by itself).
      if (o.endpoint.via_sentinel())
        o.on_switch_master = [this](const std::string& now_at) {
          for (auto& b : blocking_)
            if (b->primary() != now_at) b->drop("the sentinels moved the primary to " + now_at);
        };
    }
    return std::make_unique<connection>(ex_, std::move(o));
  };
  commands_ = make("cmd", 0, false);
  for (std::size_t i = 0; i < options.blocking_connections; ++i)
    blocking_.push_back(make("block-" + std::to_string(i), i + 1, true));
}

asio::awaitable<void> pool::run() {
  // Each connection runs on its own; the pool is done when the last one is. The count lives on
  // the heap so the connections' completions stay valid even if this frame is destroyed first.
  struct tally {
    std::size_t running;
    asio::steady_timer all_done;
  };
  auto t = std::make_shared<tally>(tally{1 + blocking_.size(), asio::steady_timer(ex_)});
  t->all_done.expires_at(asio::steady_timer::time_point::max());
  auto on_exit = [t](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    if (--t->running == 0) t->all_done.cancel();
  };
  asio::co_spawn(ex_, commands_->run(), on_exit);
  for (auto& c : blocking_)
    asio::co_spawn(ex_, c->run(), on_exit);
  co_await t->all_done.async_wait(asio::as_tuple(asio::use_awaitable));
}

void pool::stop() {
  commands_->stop();
  for (auto& c : blocking_)
    c->stop();
}

bool pool::ready() const {
  if (!commands_->ready()) return false;
  for (const auto& c : blocking_)
    if (!c->ready()) return false;
  return true;
}

} // namespace forq::redis
