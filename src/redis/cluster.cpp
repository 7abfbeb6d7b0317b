// Redis Cluster: the router a redis-cluster:// connection forwards to (cluster.hpp); the pure
// routing rules it applies are in cluster_route.cpp.
#include "redis/cluster.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace forq::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

} // namespace

cluster_router::cluster_router(asio::any_io_executor ex, connection_options options)
    : ex_(std::move(ex))
    , options_(std::move(options))
    , slots_(cluster_slots, none_owner)
    , wake_(ex_, steady_clock::time_point::max())
    , refreshed_(ex_, steady_clock::time_point::max())
    , children_done_(ex_, steady_clock::time_point::max()) {}

cluster_router::~cluster_router() = default;

cluster_router::node* cluster_router::find(const std::string& addr) {
  auto it = nodes_.find(addr);
  return it == nodes_.end() ? nullptr : &it->second;
}

connection& cluster_router::child(const std::string& host, std::uint16_t port) {
  auto addr = node_address(host, port);
  if (auto* n = find(addr)) return *n->conn;
  auto o = options_;
  o.endpoint.cluster_nodes.clear();
  o.endpoint.host = host;
  o.endpoint.port = port;
  o.endpoint.db = 0;
  o.cluster_refresh = milliseconds(0);
  o.on_lost = [this] { ask_refresh(); };
  node n{host, port, std::make_unique<connection>(ex_, std::move(o))};
  auto* conn = n.conn.get();
  nodes_.emplace(addr, std::move(n));
  ++running_children_;
  asio::co_spawn(ex_, conn->run(), [this, conn](std::exception_ptr e) {
    // A retired connection is freed once its run() has ended.
    std::erase_if(retired_, [conn](const auto& c) { return c.get() == conn; });
    if (--running_children_ == 0) children_done_.cancel();
    if (e) std::rethrow_exception(e);
  });
  if (stopped_) conn->stop();
  return *conn;
}

std::string cluster_router::owner(std::optional<std::uint16_t> slot) const {
  if (!have_map_) return {};
  if (slot) {
    auto i = slots_[*slot];
    return i == none_owner ? std::string() : owners_[i];
  }
  // No key: the node used last, if it still holds slots and is up; else one that is up.
  if (auto it = nodes_.find(last_used_);
      it != nodes_.end() && it->second.conn->ready() &&
      std::find(owners_.begin(), owners_.end(), last_used_) != owners_.end())
    return last_used_;
  for (const auto& o : owners_)
    if (auto it = nodes_.find(o); it != nodes_.end() && it->second.conn->ready()) return o;
  return owners_.empty() ? std::string() : owners_.front();
}

void cluster_router::set_owner(std::uint16_t slot, const std::string& addr) {
  auto it = std::find(owners_.begin(), owners_.end(), addr);
  if (it == owners_.end()) {
    owners_.push_back(addr);
    it = owners_.end() - 1;
  }
  slots_[slot] = static_cast<std::uint16_t>(it - owners_.begin());
}

std::vector<std::string> cluster_router::primaries() const {
  std::vector<std::string> out;
  for (auto i : slots_)
    if (i != none_owner && std::find(out.begin(), out.end(), owners_[i]) == out.end())
      out.push_back(owners_[i]);
  return out;
}

// Connections to nodes that hold no slots now (a seed that is a replica, a demoted primary)
// are closed once nothing waits on them.
void cluster_router::retire_strays() {
  auto held = primaries();
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    // One that is down goes even with requests queued on it: never sent, they fail with
    // redis_shutdown and exec() sends them to the slot's new primary.
    if (std::find(held.begin(), held.end(), it->first) == held.end() &&
        (it->second.conn->in_flight() == 0 || !it->second.conn->ready())) {
      it->second.conn->stop();
      retired_.push_back(std::move(it->second.conn));
      it = nodes_.erase(it);
      continue;
    }
    ++it;
  }
}

asio::awaitable<bool> cluster_router::refresh_once() {
  // Ask the primaries it is connected to first, then the seeds, then any node seen before.
  std::vector<std::pair<std::string, std::uint16_t>> ask;
  auto add = [&](const std::string& host, std::uint16_t port) {
    for (const auto& a : ask)
      if (a.first == host && a.second == port) return;
    ask.emplace_back(host, port);
  };
  for (const auto& [addr, n] : nodes_)
    if (n.conn->ready() && std::find(owners_.begin(), owners_.end(), addr) != owners_.end())
      add(n.host, n.port);
  for (const auto& s : options_.endpoint.cluster_nodes)
    add(s.host, s.port);
  for (const auto& [addr, n] : nodes_)
    add(n.host, n.port);

  std::string why;
  const redis::request slots_req("CLUSTER", "SLOTS");
  for (const auto& asked : ask) {
    const std::string& host = asked.first;
    const std::uint16_t port = asked.second;
    if (stopped_) co_return false;
    auto& conn = child(host, port);
    // A node that is not up gets a second to come up. One that is up is not hurried: a
    // deadline passed with the request written would drop the connection, and a WAIT of
    // redis.durability may hold its pipeline for up to its timeout.
    exec_options o;
    if (!conn.ready())
      o.deadline = steady_clock::now() + std::min(options_.connect_timeout, milliseconds(1000));
    auto r = connection::single(co_await conn.exec(slots_req, o));
    const auto where = node_address(host, port);
    if (!r) {
      why =
          where + ": " + (conn.last_failure().empty() ? r.error().message() : conn.last_failure());
      continue;
    }
    if (r->is_error()) {
      why = where + " answered CLUSTER SLOTS with " + std::string(r->str()) +
            (r->str().find("cluster support disabled") != std::string_view::npos
                 ? " (a redis-cluster:// URL needs Redis Cluster; use redis:// for one server)"
                 : "");
      continue;
    }
    std::vector<std::uint16_t> slots(cluster_slots, none_owner);
    std::vector<std::string> owners;
    for (const auto& range : r->elements()) {
      const auto& e = range.elements();
      if (e.size() < 3 || !e[2].is_array() || e[2].elements().size() < 2) continue;
      auto from = e[0].as_integer();
      auto to = e[1].as_integer();
      auto node_host = e[2].elements()[0].as_string();
      auto node_port = e[2].elements()[1].as_integer();
      if (!from || !to || !node_port || *from < 0 || *to >= std::int64_t(cluster_slots) ||
          *from > *to || *node_port <= 0 || *node_port > 65535)
        continue;
      std::string h(node_host.value_or(""));
      if (h.empty() || h == "?") h = host; // the node does not know its own name: as asked
      auto a = node_address(h, static_cast<std::uint16_t>(*node_port));
      auto it = std::find(owners.begin(), owners.end(), a);
      if (it == owners.end()) {
        owners.push_back(a);
        it = owners.end() - 1;
      }
      for (auto s = *from; s <= *to; ++s)
        slots[s] = static_cast<std::uint16_t>(it - owners.begin());
    }
    if (owners.empty()) {
      why = where + " knows no slots yet (is the cluster created?)";
      continue;
    }
    owners_ = std::move(owners);
    slots_ = std::move(slots);
    have_map_ = true;
    auto held = std::count_if(slots_.begin(), slots_.end(), [](auto i) { return i != none_owner; });
    std::string summary;
    for (const auto& who : owners_)
      summary += (summary.empty() ? "" : ", ") + who;
    summary = std::to_string(owners_.size()) + " primaries (" + summary + ")" +
              (held == std::int64_t(cluster_slots)
                   ? ""
                   : "; " + std::to_string(cluster_slots - held) + " slots held by none");
    if (summary != map_summary_) {
      if (options_.cluster_refresh.count() > 0) spdlog::info("redis cluster: {}", summary);
      map_summary_ = summary;
    }
    if (!last_failure_.empty() && options_.cluster_refresh.count() > 0)
      spdlog::info("redis cluster: slots known again from {}", where);
    last_failure_.clear();
    retire_strays();
    co_return true;
  }
  auto failure = "no node of the cluster told its slots (" + why + ")";
  if (last_failure_.empty() && options_.cluster_refresh.count() > 0)
    spdlog::warn("redis cluster: {}; asking again", failure);
  last_failure_ = failure;
  co_return false;
}

asio::awaitable<void> cluster_router::sleep(milliseconds d) {
  asio::steady_timer t(ex_, d);
  co_await t.async_wait(use_tuple);
}

asio::awaitable<void> cluster_router::run() {
  if (running_ || stopped_) co_return;
  // Cancelled from outside, it still stops its connections and waits for them (below).
  co_await asio::this_coro::throw_if_cancelled(false);
  running_ = true;
  milliseconds retry{100};
  while (!stopped_) {
    const bool ok = co_await refresh_once();
    last_refresh_ = steady_clock::now();
    ++refreshes_;
    refreshed_.cancel();
    if (stopped_) break;
    auto next = steady_clock::time_point::max();
    if (!ok) {
      next = last_refresh_ + retry;
      retry = std::min(retry * 2, milliseconds(1000));
    } else {
      retry = milliseconds(100);
      if (options_.cluster_refresh.count() > 0) next = last_refresh_ + options_.cluster_refresh;
    }
    // Asked for meanwhile, or requests wait on a connection that is down (written to it just
    // as it was lost: they stay queued for its next connect): again, at most ten times a
    // second. Once the map names the dead primary's successor, retire_strays() closes its
    // connection and exec() sends what was queued there to the new one.
    bool stuck = false;
    for (const auto& [addr, n] : nodes_)
      stuck = stuck || (!n.conn->ready() && n.conn->in_flight() > 0);
    if (want_refresh_ || stuck) next = std::min(next, last_refresh_ + milliseconds(100));
    wake_.expires_at(next);
    co_await wake_.async_wait(use_tuple);
    // Cancelled from outside (an `||` around run()): stop, as connection::run() does.
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      stop();
    if (stopped_) break;
    if (auto soonest = last_refresh_ + milliseconds(100); steady_clock::now() < soonest)
      co_await sleep(std::chrono::duration_cast<milliseconds>(soonest - steady_clock::now()));
    want_refresh_ = false;
  }
  for (auto& [addr, n] : nodes_)
    n.conn->stop();
  while (running_children_ > 0)
    co_await children_done_.async_wait(use_tuple);
  running_ = false;
}

void cluster_router::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [addr, n] : nodes_)
    n.conn->stop();
  wake_.cancel();
  refreshed_.cancel();
}

void cluster_router::ask_refresh() {
  if (want_refresh_) return;
  want_refresh_ = true;
  // Waiting its 10 s: now (or 100 ms after the last one). Refreshing: once more after it.
  if (wake_.expiry() > last_refresh_ + milliseconds(100)) wake_.cancel();
}

// Until the next refresh attempt has finished (true), or the deadline or stop (false).
asio::awaitable<bool>
cluster_router::wait_refresh(std::optional<steady_clock::time_point> deadline) {
  ask_refresh();
  const auto seen = refreshes_;
  while (!stopped_ && refreshes_ == seen) {
    if (deadline && steady_clock::now() >= *deadline) co_return false;
    if (deadline) {
      // The deadline ends this wait, as a refresh would.
      asio::steady_timer give_up(ex_, *deadline);
      give_up.async_wait([this, seen](error_code ec) {
        if (!ec && refreshes_ == seen) refreshed_.cancel();
      });
      co_await refreshed_.async_wait(use_tuple);
      give_up.cancel();
    } else {
      co_await refreshed_.async_wait(use_tuple);
    }
  }
  co_return !stopped_ && refreshes_ != seen;
}

asio::awaitable<boost::system::result<connection::response>>
cluster_router::exec(const request& req, exec_options opts) {
  if (req.empty()) co_return connection::response{};
  if (stopped_) co_return error_code(errc::redis_shutdown);
  auto spans = split_commands(req.payload());
  if (!spans) co_return error_code(errc::redis_protocol);
  const std::size_t n = spans->size();

  // Each command's slot; one without a key goes with its neighbours (see the header).
  std::vector<std::optional<std::uint16_t>> slot(n);
  std::optional<std::uint16_t> previous;
  for (std::size_t i = 0; i < n; ++i) {
    if ((*spans)[i].slot) previous = (*spans)[i].slot;
    slot[i] = previous;
  }
  std::optional<std::uint16_t> next;
  if (!opts.route.empty()) next = key_slot(opts.route);
  for (std::size_t i = n; i-- > 0;) {
    if ((*spans)[i].slot) next = (*spans)[i].slot;
    if (!slot[i]) slot[i] = next;
  }

  // Only keyless commands, for a route (the WAIT after an enqueue): to the node this router sent
  // that slot's commands to last, and nowhere else. A WAIT elsewhere would confirm nothing.
  std::string pinned;
  if (!opts.route.empty()) {
    bool keyless_only = true;
    for (const auto& c : *spans)
      keyless_only = keyless_only && !c.slot;
    if (auto it = sent_to_.find(key_slot(opts.route)); keyless_only && it != sent_to_.end())
      pinned = it->second;
  }

  connection::response out(n);
  std::vector<std::string> ask_to(n); // "host:port" after an ASK, for the next send only
  std::vector<std::size_t> todo(n);
  for (std::size_t i = 0; i < n; ++i)
    todo[i] = i;
  milliseconds pause{10};
  int bounces = 0;
  auto out_of_time = [&] { return opts.deadline && steady_clock::now() >= *opts.deadline; };

  bool some_ran = false; // a part of the request was answered: "never sent" is no longer true
  auto failed = [&](errc e) {
    return error_code(some_ran && (e == errc::redis_unavailable || e == errc::redis_shutdown)
                          ? errc::redis_connection_lost
                          : e);
  };
  while (!todo.empty()) {
    if (stopped_) co_return failed(errc::redis_shutdown);
    if (!have_map_) {
      if (!co_await wait_refresh(opts.deadline))
        co_return failed(stopped_ ? errc::redis_shutdown : errc::redis_unavailable);
      continue;
    }
    // Group by node, in the order of each group's first command.
    std::vector<std::pair<std::string, std::vector<std::size_t>>> groups;
    bool unowned = false;
    for (auto i : todo) {
      auto addr = !ask_to[i].empty() ? ask_to[i] : !pinned.empty() ? pinned : owner(slot[i]);
      if (addr.empty()) {
        unowned = true;
        break;
      }
      auto g = std::find_if(groups.begin(), groups.end(), [&](auto& x) { return x.first == addr; });
      if (g == groups.end()) {
        groups.emplace_back(addr, std::vector<std::size_t>());
        g = groups.end() - 1;
      }
      g->second.push_back(i);
    }
    if (unowned) { // a slot nobody holds (the cluster is changing): ask again, then retry
      if (!co_await wait_refresh(opts.deadline))
        co_return failed(stopped_ ? errc::redis_shutdown : errc::redis_unavailable);
      continue;
    }

    std::vector<std::size_t> again;
    bool need_refresh = false;
    bool need_pause = false;
    for (auto& group : groups) {
      const std::string& addr = group.first; // named: a lambda below uses them (clang 14
      const auto& members = group.second;    // cannot capture structured bindings)
      std::string host;
      std::uint16_t port = 0;
      split_node_address(addr, host, port);
      if (stopped_) co_return failed(errc::redis_shutdown);
      child(host, port);
      last_used_ = addr;
      bool asking = false;
      for (auto i : members)
        asking = asking || !ask_to[i].empty();
      request sub;
      const request* send = &req;
      if (members.size() != n || asking) {
        for (auto i : members) {
          if (!ask_to[i].empty()) sub.push("ASKING");
          sub.append_formatted(req.payload().substr((*spans)[i].offset, (*spans)[i].size), 1);
        }
        send = &sub;
      }
      // A node that is not up gets a second to come up: then the slots are asked again (a
      // primary that died is replaced by its replica). Nothing was sent, so nothing ran. Its
      // connection is looked up again after every wait: a refresh may have closed it.
      auto* target = find(addr);
      if (!target->conn->ready()) {
        // Meanwhile the slots are asked for again (ten times a second at most): when they name
        // another primary, the wait ends and the commands go there.
        auto moved_away = [&] {
          if (!pinned.empty()) return false;
          for (auto i : members)
            if (ask_to[i].empty() && owner(slot[i]) != addr) return true;
          return false;
        };
        auto limit = steady_clock::now() + milliseconds(1000);
        if (opts.deadline) limit = std::min(limit, *opts.deadline);
        for (int polls = 0; target && !target->conn->ready() && !target->conn->fatal_error() &&
                            !stopped_ && steady_clock::now() < limit && !moved_away();
             ++polls) {
          if (polls % 20 == 0) ask_refresh();
          co_await sleep(milliseconds(5));
          target = find(addr);
        }
        if (target)
          if (auto f = target->conn->fatal_error()) co_return f;
        if (!target || !target->conn->ready()) {
          if (stopped_) co_return failed(errc::redis_shutdown);
          if (!pinned.empty()) co_return failed(errc::redis_unavailable);
          need_refresh = true;
          again.insert(again.end(), members.begin(), members.end());
          for (auto i : members)
            ask_to[i].clear();
          continue;
        }
      }
      // From here to the request being queued nothing waits, and a connection with a request
      // in flight is never closed by a refresh.
      auto& conn = *target->conn;
      for (auto i : members)
        if ((*spans)[i].slot && ask_to[i].empty()) sent_to_[*(*spans)[i].slot] = addr;
      auto r = co_await conn.exec(*send, opts);
      if (!r) {
        // A connection retired meanwhile (its node holds no slots now): not sent; elsewhere.
        if (r.error() == errc::redis_shutdown && !stopped_) {
          need_refresh = true;
          again.insert(again.end(), members.begin(), members.end());
          continue;
        }
        if (r.error() == errc::redis_unavailable || r.error() == errc::redis_shutdown)
          co_return failed(static_cast<errc>(r.error().value()));
        co_return r.error();
      }
      some_ran = true;
      // A keyless command after a redirected one (the WAIT after a write) goes again with it:
      // where it ran, it confirmed nothing of the write.
      std::optional<redirect> earlier;
      std::size_t k = 0;
      for (auto i : members) {
        if (!ask_to[i].empty()) {
          ++k; // ASKING's +OK
          ask_to[i].clear();
        }
        if (k >= r->size()) co_return error_code(errc::redis_protocol);
        auto& rep = (*r)[k++];
        auto where = read_redirect(rep);
        out[i] = std::move(rep);
        if (where.what == redirect::kind::none && earlier && !(*spans)[i].slot) {
          if (earlier->what == redirect::kind::ask)
            ask_to[i] = earlier->host.empty() ? node_address(host, earlier->port)
                                              : node_address(earlier->host, earlier->port);
          again.push_back(i);
          continue;
        }
        if (where.what != redirect::kind::none) earlier = where;
        switch (where.what) {
        case redirect::kind::none:
          break;
        case redirect::kind::moved:
          set_owner(where.slot, where.host.empty() ? node_address(host, where.port)
                                                   : node_address(where.host, where.port));
          need_refresh = true;
          again.push_back(i);
          break;
        case redirect::kind::ask:
          ask_to[i] = where.host.empty() ? node_address(host, where.port)
                                         : node_address(where.host, where.port);
          again.push_back(i);
          break;
        case redirect::kind::wait:
          need_pause = true;
          again.push_back(i);
          break;
        case redirect::kind::refresh:
          need_refresh = true;
          need_pause = true;
          again.push_back(i);
          break;
        }
      }
    }
    if (again.empty()) break;
    // A cluster that keeps sending it around: the caller gets the last answer (an error reply).
    if (++bounces > 32 || out_of_time()) {
      bool unsent = false;
      for (auto i : again)
        unsent = unsent || out[i].is_nil();
      if (unsent) co_return failed(errc::redis_unavailable);
      break;
    }
    std::sort(again.begin(), again.end());
    todo = std::move(again);
    if (need_refresh) ask_refresh();
    if (need_pause) {
      co_await sleep(pause);
      pause = std::min(pause * 2, milliseconds(500));
    }
  }
  co_return out;
}

asio::awaitable<boost::system::result<connection::response>>
cluster_router::exec_on(const std::string& addr, const request& req, exec_options opts) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_node_address(addr, host, port)) co_return error_code(errc::invalid_value);
  if (stopped_) co_return error_code(errc::redis_shutdown);
  co_return co_await child(host, port).exec(req, opts);
}

bool cluster_router::ready() const {
  if (!have_map_ || stopped_) return false;
  bool any = false;
  for (const auto& [addr, n] : nodes_) {
    if (std::find(owners_.begin(), owners_.end(), addr) == owners_.end()) continue;
    if (!n.conn->ready()) return false;
    any = true;
  }
  return any;
}

std::int64_t cluster_router::client_id() const {
  auto it = nodes_.find(last_used_);
  return it == nodes_.end() ? 0 : it->second.conn->client_id();
}

void cluster_router::drop(const std::string& reason) {
  for (auto& [addr, n] : nodes_)
    n.conn->drop(reason);
}

error_code cluster_router::fatal_error() const {
  for (const auto& [addr, n] : nodes_)
    if (auto f = n.conn->fatal_error()) return f;
  return {};
}

std::size_t cluster_router::in_flight() const {
  std::size_t sum = 0;
  for (const auto& [addr, n] : nodes_)
    sum += n.conn->in_flight();
  return sum;
}

std::size_t cluster_router::buffered_bytes() const {
  std::size_t sum = 0;
  for (const auto& [addr, n] : nodes_)
    sum += n.conn->buffered_bytes();
  return sum;
}

connection::counters cluster_router::stats() const {
  connection::counters sum;
  for (const auto& [addr, n] : nodes_) {
    const auto& c = n.conn->stats();
    sum.requests += c.requests;
    sum.writes += c.writes;
    sum.connects += c.connects;
    sum.timeouts += c.timeouts;
  }
  return sum;
}

} // namespace forq::redis
