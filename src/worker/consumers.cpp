// A worker's consumers (worker.hpp): one per configured queue on one Redis pool, their keepers,
// their drain, and the figures they publish (the shared metrics region, figures by the minute,
// the queues' description for the worker's presence).
#include "exit_codes.hpp"
#include "log.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "redis/pool.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"
#include "worker/worker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace forq::worker {

using process::shared_histogram;
using process::shared_metrics;
namespace asio = boost::asio;
using namespace std::chrono_literals;

consumers::consumers(asio::any_io_executor ex, const config& cfg, const std::string& url,
                     const queue::handler_map& program, process::shared_metrics* keepers)
    : cfg_(cfg)
    , finished_bell_(ex)
    , flush_done_(ex)
    , keepers_(keepers)
    , keeper_watch_(ex) {
  redis::pool_options po;
  po.connection = redis_options(cfg, parse_redis_url(url).value());
  po.blocking_connections = cfg.queues.size();
  po.role = "worker";
  pool_ = std::make_unique<redis::pool>(ex, po);
  // One queue has every slot; several share them by weight.
  auto share =
      cfg.queues.size() > 1 ? std::make_shared<queue::slot_share>(cfg.concurrency) : nullptr;
  for (std::size_t i = 0; i < cfg.queues.size(); ++i) {
    queue::consumer_options o;
    o.queue = cfg.queues[i].name;
    o.concurrency = cfg.concurrency;
    o.share = share;
    o.weight = cfg.queues[i].weight;
    o.lease = cfg.lease;
    o.attempt_timeout = cfg.attempt_timeout;
    o.blocking_connection = i;
    if (keepers && i < process::shared_metrics::max_keepers) {
      o.keeper = [holder = &keepers->keepers[i]] { return queue::claim_keeper(*holder); };
      o.release_keeper = [holder = &keepers->keepers[i]] { queue::release_keeper(*holder); };
    }
    o.default_handler = cfg.queues[i].default_handler;
    o.schedules = [queue = cfg.queues[i].name](redis::connection& conn,
                                               std::chrono::milliseconds longest) {
      return schedule::tick(conn, queue, longest);
    };
    o.schedule_check_every = schedule::look_every;
    o.retry = cfg.retry_policy_of(cfg.queues[i]);
    list_.push_back(std::make_unique<queue::consumer>(*pool_, o, worker_handlers(cfg, program)));
  }
}

consumers::~consumers() = default;

void consumers::start(std::function<void(int)> on_fatal) {
  auto ex = pool_->commands().executor();
  asio::co_spawn(ex, pool_->run(), [this](std::exception_ptr) {
    pool_done_ = true;
    finished_bell_.cancel();
  });
  for (std::size_t i = 0; i < list_.size(); ++i)
    asio::co_spawn(ex, list_[i]->run(),
                   [this, i, on_fatal](std::exception_ptr e, boost::system::error_code ec) {
                     ++finished_;
                     finished_bell_.cancel();
                     if (e || ec) {
                       spdlog::critical("consuming queue {} failed: {}", cfg_.queues[i].name,
                                        e ? "an exception" : ec.message());
                       // A schema, a key or credentials Redis refuses: restarting cannot help.
                       on_fatal(ec == errc::queue_schema_mismatch || ec == errc::redis_refused ||
                                        ec == errc::redis_auth_failed
                                    ? exit_code::fatal
                                    : exit_code::failure);
                     }
                   });
  if (keepers_)
    asio::co_spawn(
        ex,
        [this]() -> asio::awaitable<void> {
          const auto n = std::min(list_.size(), process::shared_metrics::max_keepers);
          while (watching_) {
            keeper_watch_.expires_after(200ms);
            co_await keeper_watch_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (!watching_) break;
            for (std::size_t i = 0; i < n; ++i)
              if (keepers_->keepers[i].load(std::memory_order_relaxed) == 0)
                list_[i]->keeper_vacant();
          }
        },
        asio::detached);
  std::string names;
  for (const auto& q : cfg_.queues)
    names += (names.empty() ? "" : ", ") + q.name +
             (cfg_.queues.size() > 1 ? " (weight " + std::to_string(q.weight) + ")" : "");
  spdlog::info("consuming {} queue{}: {}; {} jobs at once", list_.size(),
               list_.size() == 1 ? "" : "s", names, cfg_.concurrency);
}

asio::awaitable<void> consumers::drain(bool wait_for_running) {
  watching_ = false;
  keeper_watch_.cancel();
  for (auto& c : list_)
    c->stop();
  if (wait_for_running)
    co_await wait_until([this] { return finished_ == list_.size(); },
                        std::chrono::steady_clock::now() + cfg_.drain_timeout);
  if (finished_ < list_.size()) {
    // Still running: back to their queues now, for other workers, not after a lease.
    std::size_t back = 0;
    for (auto& c : list_)
      back += co_await c->release_running();
    if (back > 0)
      spdlog::warn("drain timeout ({} ms) passed: handed {} running job{} back to {} queue",
                   cfg_.drain_timeout.count(), back, back == 1 ? "" : "s",
                   list_.size() == 1 ? "its" : "their");
    // The outcomes recorded so far (attempts that ended before the hand-back) are acknowledged
    // before the connections close: waited for, at most 2 s (then stall recovery reruns them).
    const auto until = std::chrono::steady_clock::now() + 2s;
    for (auto& c : list_)
      if (!co_await c->acks_sent(until))
        spdlog::warn("queue {}: acks still unanswered after 2 s; those jobs may run again",
                     c->queue());
  }
  // The last words before the connections close: what this process did since the last flush
  // (within 2 s, the loop's flush still out included), then its presence removed (1 s more).
  co_await flush_minutes(std::chrono::steady_clock::now() + 2s);
  said_farewell = true;
  if (!farewell.empty()) {
    redis::exec_options opts;
    opts.deadline = std::chrono::steady_clock::now() + 1s;
    co_await pool_->commands().exec(farewell, opts);
  }
  pool_->stop();
  co_await wait_until([this] { return pool_done_; }, std::chrono::steady_clock::time_point::max());
}

asio::awaitable<void> consumers::wait_until(const std::function<bool()>& done,
                                            std::chrono::steady_clock::time_point until) {
  // Single-threaded: nothing can ring between the look at done() and the wait that follows.
  while (!done() && std::chrono::steady_clock::now() < until) {
    finished_bell_.expires_at(until);
    co_await finished_bell_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

bool consumers::redis_ready() const {
  return pool_->commands().ready();
}

bool consumers::fetching_ready() const {
  return pool_->ready();
}

bool consumers::refusing_writes() const {
  return std::any_of(list_.begin(), list_.end(),
                     [](const auto& c) { return c->refusing_writes(); });
}

std::string consumers::not_ready() const {
  if (auto fatal = pool_->commands().fatal_error()) return "Redis: " + fatal.message();
  if (!fetching_ready()) return "Redis unreachable";
  for (const auto& c : list_)
    if (!c->started()) return "queue " + c->queue() + " not started yet (see the log)";
  if (refusing_writes()) return "Redis refuses writes";
  return {};
}

void consumers::publish(process::slot_counters& slot) {
  published_.resize(list_.size());
  for (std::size_t i = 0; i < list_.size() && i < shared_metrics::max_queues; ++i) {
    const auto& now = list_[i]->stats();
    auto& was = published_[i];
    auto& q = slot.queues[i];
    q.fetched.fetch_add(now.fetched - was.fetched, std::memory_order_relaxed);
    q.done.fetch_add(now.done - was.done, std::memory_order_relaxed);
    q.retried.fetch_add(now.retried - was.retried, std::memory_order_relaxed);
    q.dead.fetch_add(now.dead - was.dead, std::memory_order_relaxed);
    q.recovered.fetch_add(now.recovered - was.recovered, std::memory_order_relaxed);
    q.handed_back.fetch_add(now.handed_back - was.handed_back, std::memory_order_relaxed);
    q.cancelled.fetch_add(now.cancelled - was.cancelled, std::memory_order_relaxed);
    q.in_flight.store(list_[i]->running(), std::memory_order_relaxed);
    auto add = [](shared_histogram& to, const queue::consumer::histogram& n,
                  const queue::consumer::histogram& w) {
      for (std::size_t b = 0; b < n.counts.size(); ++b)
        to.counts[b].fetch_add(n.counts[b] - w.counts[b], std::memory_order_relaxed);
      to.sum_us.fetch_add(n.sum_us - w.sum_us, std::memory_order_relaxed);
    };
    add(q.pickup, now.pickup, was.pickup);
    add(q.run, now.run, was.run);
    add(q.round_trip, now.round_trip, was.round_trip);
    was = now;
  }
  std::uint64_t connects = pool_->commands().stats().connects;
  for (std::size_t b = 0; b < pool_->blocking_count(); ++b)
    connects += pool_->blocking(b).stats().connects;
  // Every connection's first connect is not a reconnect.
  const std::uint64_t firsts = 1 + pool_->blocking_count();
  auto re = connects > firsts ? connects - firsts : 0;
  if (re > published_connects_) {
    slot.reconnects.fetch_add(re - published_connects_, std::memory_order_relaxed);
    published_connects_ = re;
  }
}

asio::awaitable<void> consumers::flush_minutes(std::chrono::steady_clock::time_point deadline) {
  // One at a time: two would add the same counts twice. drain()'s, asked while the loop's is
  // still out (a slow Redis), waits for it and then adds what came after the loop's snapshot.
  while (flushing_) {
    if (std::chrono::steady_clock::now() >= deadline) co_return;
    flush_done_.expires_at(deadline);
    co_await flush_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  flushing_ = true;
  struct done_flushing {
    bool& f;
    asio::steady_timer& bell;
    ~done_flushing() {
      f = false;
      bell.cancel();
    }
  } guard{flushing_, flush_done_};
  flushed_.resize(list_.size());
  std::vector<std::pair<std::string, queue::history::delta>> deltas;
  std::vector<std::size_t> of; // the consumer behind each delta
  std::vector<queue::consumer::counters> now;
  for (std::size_t i = 0; i < list_.size(); ++i) {
    now.push_back(list_[i]->stats());
    const auto& n = now.back();
    const auto& was = flushed_[i];
    queue::history::delta d;
    d.done = n.done - was.done;
    d.failed = (n.retried + n.dead) - (was.retried + was.dead);
    for (std::size_t b = 0; b < d.pickup.size(); ++b)
      d.pickup[b] = n.pickup_fine[b] - was.pickup_fine[b];
    if (d.empty()) continue;
    deltas.emplace_back(list_[i]->queue(), d);
    of.push_back(i);
  }
  if (deltas.empty()) co_return;
  redis::exec_options opts;
  opts.deadline = deadline;
  auto ok = co_await queue::history::add(pool_->commands(), deltas,
                                         queue::history::minute_of(queue::epoch_ms()), opts);
  if (!ok) {
    spdlog::debug("figures by the minute not written (next time): {}", ok.error().message());
    co_return;
  }
  // Only what Redis took counts as added: the rest goes with the next flush.
  for (std::size_t k = 0; k < of.size(); ++k)
    if ((*ok)[k]) flushed_[of[k]] = now[of[k]];
}

boost::json::array consumers::describe_queues() const {
  boost::json::array out;
  for (const auto& c : list_) {
    boost::json::object q;
    q["queue"] = c->queue();
    q["started"] = c->started();
    q["running"] = c->running();
    q["done"] = c->stats().done;
    q["failed"] = c->stats().retried + c->stats().dead;
    boost::json::array jobs; // the oldest ten running, each with its start
    for (const auto& j : c->running_jobs(10)) {
      boost::json::object o;
      o["id"] = j.id;
      o["started_ms"] = j.started_ms;
      jobs.push_back(std::move(o));
    }
    q["jobs"] = std::move(jobs);
    out.push_back(std::move(q));
  }
  return out;
}

std::uint64_t consumers::done() const {
  std::uint64_t n = 0;
  for (const auto& c : list_)
    n += c->stats().done;
  return n;
}

} // namespace forq::worker
