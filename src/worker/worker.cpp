// One worker process of `forq serve` (the child side of the pre-fork model, docs/signals.md):
// its own single-threaded io_context, Redis pool and one consumer per configured queue, until
// the master (or its own death signal) tells it to stop.
#include "worker/worker.hpp"

#include "backoff.hpp"
#include "exit_codes.hpp"
#include "forq/handlers.hpp"
#include "forq/redis_url.hpp"
#include "http/http.hpp"
#include "log.hpp"
#include "process/process_title.hpp"
#include "queue/consumer.hpp"
#include "queue/protocol.hpp"
#include "redis/pool.hpp"
#include "schedule/schedule.hpp"
#include "utf8.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <unistd.h>

namespace forq::worker {

using process::shared_histogram;
using process::shared_metrics;
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> pause_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Worker 1 looks once at start: a Redis whose maxmemory-policy may evict keys deletes queued
// jobs silently when memory runs out. A warning, or with redis.strict a fatal error (exit 2).
asio::awaitable<void> check_eviction(redis::connection& conn, const config& cfg,
                                     std::function<void(int)> on_fatal) {
  auto r = co_await conn.command("INFO", "memory");
  std::string policy;
  if (r && !r->is_error()) {
    std::string_view info = r->str();
    auto at = info.find("maxmemory_policy:");
    if (at != std::string_view::npos) {
      info.remove_prefix(at + 17);
      policy = info.substr(0, info.find_first_of("\r\n"));
    }
  }
  if (policy.empty()) {
    spdlog::info("cannot read Redis's maxmemory-policy ({}); make sure it is noeviction",
                 r ? (r->is_error() ? std::string(r->str()) : "not in INFO memory")
                   : r.error().message());
    co_return;
  }
  if (policy == "noeviction") co_return;
  if (cfg.redis_strict) {
    spdlog::critical("Redis's maxmemory-policy is {}: when memory runs out it deletes keys, "
                     "queued jobs among them, without a word; --redis-strict refuses such a "
                     "Redis: set maxmemory-policy noeviction (CONFIG SET and redis.conf)",
                     policy);
    on_fatal(exit_code::fatal);
    co_return;
  }
  spdlog::warn("Redis's maxmemory-policy is {}: when memory runs out it deletes keys, queued jobs "
               "among them, without a word; set maxmemory-policy noeviction (CONFIG SET and "
               "redis.conf), or run with --redis-strict to refuse such a Redis",
               policy);
}

} // namespace

// The handlers of a worker: the built-ins (handlers::builtins), the configured ones (`handlers`:
// exec and http) and the program's (forq::run). A job naming a handler that does not exist goes
// to the dead set with the reason, and the queue moves on.
queue::handler_map worker_handlers(const config& cfg, const queue::handler_map& program) {
  auto h = handlers::builtins();
  for (const auto& [name, run] : program)
    h.emplace(name, run);
  for (const auto& spec : cfg.handlers) {
    if (!spec.http.empty()) {
      handlers::http_options o;
      o.url = spec.http;
      o.timeout = spec.timeout;
      o.max_output = spec.max_output;
      h.emplace(spec.name, handlers::http(std::move(o)));
      continue;
    }
    handlers::exec_options o;
    o.command = spec.exec;
    o.timeout = spec.timeout;
    o.retry_exit_code = spec.retry_exit_code;
    o.fail_exit_code = spec.fail_exit_code;
    o.max_output = spec.max_output;
    h.emplace(spec.name, handlers::exec(std::move(o)));
  }
  return h;
}

std::optional<std::string> check_handlers(const config& cfg, const queue::handler_map& program) {
  for (const auto& [name, run] : program) {
    if (auto ok = handlers::check_name(name); !ok) return "the program's " + ok.error().message();
    if (!run) return "the program's handler \"" + name + "\" is empty";
    if (handlers::is_builtin(name))
      return "the program's handler \"" + name + "\" has the name of a built-in handler";
    for (const auto& spec : cfg.handlers)
      if (spec.name == name)
        return "handler \"" + name + "\" is both the program's and configured in `handlers`";
  }
  for (const auto& q : cfg.queues) {
    if (q.default_handler.empty() || handlers::is_builtin(q.default_handler) ||
        program.count(q.default_handler))
      continue;
    bool configured = false;
    for (const auto& spec : cfg.handlers)
      configured = configured || spec.name == q.default_handler;
    if (!configured)
      return "queue \"" + q.name + "\": default handler \"" + q.default_handler +
             "\" is not a handler this forq has (built-in, configured in `handlers`, or the "
             "program's)";
  }
  return std::nullopt;
}

redis::connection_options redis_options(const config& cfg, const redis_endpoint& ep) {
  redis::connection_options o;
  o.endpoint = ep;
  redis::set_timeouts(o, cfg.redis_timeout);
  o.sentinel_password = cfg.redis_sentinel_password;
  o.durability.replicas = cfg.redis_wait_replicas;
  o.durability.timeout = cfg.redis_wait_timeout;
  return o;
}

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

namespace {

// The `schedules` setting made true in Redis by every worker as it starts (so at start and
// after SIGHUP, which replaces the workers), tried again until it is. Idempotent: the first
// worker to change something logs it; the others find nothing to do.
asio::awaitable<void> reconcile_schedules(redis::connection& conn, const config& cfg) {
  auto defs = schedule::from_json_list(cfg.schedules_json);
  if (!defs) { // checked when the setting was read
    spdlog::error("schedules: {}", defs.error().message());
    co_return;
  }
  std::vector<std::string> queues;
  for (const auto& q : cfg.queues)
    queues.push_back(q.name);
  backoff wait(backoff_policy{std::chrono::seconds(1), std::chrono::seconds(30), true, true},
               static_cast<std::uint64_t>(::getpid()));
  for (;;) {
    auto ok = co_await schedule::reconcile(conn, *defs, queues);
    if (ok) co_return;
    if (ok.error() == errc::redis_shutdown) co_return;
    const auto w = wait.next();
    spdlog::warn("schedules: the schedules setting is not in Redis yet ({}); trying again in {} ms",
                 ok.error().message(), w.count());
    asio::steady_timer t(co_await asio::this_coro::executor, w);
    co_await t.async_wait(asio::use_awaitable);
  }
}

// One worker process's life. Built in order (loop, signals, Redis pool and consumers, HTTP, the
// metrics publisher), it runs until a stop signal or a fatal error and then stops along one
// path: running -> draining -> stopped, or -> quitting at once (SIGQUIT, at any time).
class worker_life {
 public:
  worker_life(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
              shared_metrics* metrics, const queue::handler_map& program)
      : cfg_(cfg)
      , slot_(slot)
      , metrics_(metrics)
      , signals_(ioc_, SIGTERM, SIGINT, SIGQUIT)
      , work_(ioc_.get_executor(), cfg, url, program, metrics) {
    // The master forked this process with them blocked (serve.cpp); now they have a listener.
    sigset_t stops;
    sigemptyset(&stops);
    for (int sig : {SIGTERM, SIGINT, SIGQUIT})
      sigaddset(&stops, sig);
    ::sigprocmask(SIG_UNBLOCK, &stops, nullptr);
    work_.start([this](int code) { fail(code); });
    if (slot == 1)
      asio::co_spawn(ioc_, check_eviction(work_.commands(), cfg, [this](int c) { fail(c); }),
                     asio::detached);
    if (!cfg.schedules_json.empty())
      asio::co_spawn(ioc_, reconcile_schedules(work_.commands(), cfg), asio::detached);
    // The HTTP surface on the master's listener, and this worker's share of /metrics.
    web_.cfg = &cfg;
    web_.metrics = metrics;
    web_.conn = &work_.commands();
    web_.redis_deadline = std::min<std::chrono::milliseconds>(cfg.redis_timeout, 10s);
    web_.not_ready = [this] { return draining_ ? std::string("draining") : work_.not_ready(); };
    for (const auto& [name, h] : worker_handlers(cfg, program))
      web_.handlers.push_back(name);
    if (listener_fd >= 0) asio::co_spawn(ioc_, http::serve_http(web_, listener_fd), asio::detached);
    if (metrics) asio::co_spawn(ioc_, publish_loop(), asio::detached);
    asio::co_spawn(ioc_, presence_loop(), asio::detached);
    asio::co_spawn(ioc_, minutes_loop(), asio::detached);
  }

  int run() {
    asio::co_spawn(ioc_, life(), [this](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("worker {}: {}", slot_, ex.what());
      }
      code_ = exit_code::failure;
      ioc_.stop();
    });
    ioc_.run();
    spdlog::default_logger()->flush();
    return code_;
  }

 private:
  // A consumer cannot go on: stop with its code.
  void fail(int code) {
    if (!fatal_) fatal_ = code;
    signals_.cancel();
  }

  // The signal (or the fatal error, as 0) that ends running.
  asio::awaitable<int> stop_reason() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (fatal_) co_return 0;
      if (!ec) co_return sig;
    }
  }

  asio::awaitable<void> life() {
    const int sig = co_await stop_reason();
    stop_http();
    if (fatal_) {
      code_ = fatal_;
      co_await work_.drain(false);
      ioc_.stop();
      co_return;
    }
    if (sig == SIGQUIT) quit_now("SIGQUIT"); // fast stop: leases bring the running jobs back
    asio::co_spawn(ioc_, drain_watchdog(), asio::detached);
    asio::co_spawn(ioc_, quit_while_draining(), asio::detached);
    spdlog::info("worker {} draining (SIG{})", slot_, sigabbrev_np(sig));
    process::set_process_title("forq: worker " + std::to_string(slot_) + " [draining]");
    co_await work_.drain(true);
    if (metrics_) work_.publish(my_slot());
    spdlog::info("worker {} stopped; {} done", slot_, counted(work_.done(), "job"));
    ioc_.stop(); // the watchdog and the SIGQUIT listener are still waiting
  }

  void stop_http() {
    draining_ = true;
    beat_.cancel(); // say so at once
    web_.stopping = true;
    if (web_.acceptor) {
      boost::system::error_code ignored;
      web_.acceptor->close(ignored);
    }
  }

  [[noreturn]] void quit_now(const char* why) {
    spdlog::info("worker {} stopping now ({}); {} done", slot_, why, counted(work_.done(), "job"));
    spdlog::default_logger()->flush();
    ::_exit(exit_code::ok);
  }

  // While draining, SIGQUIT (the master's second SIGINT) still means: now.
  asio::awaitable<void> quit_while_draining() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (!ec && sig == SIGQUIT) quit_now("SIGQUIT while draining");
    }
  }

  // A drain that cannot reach Redis (it died with the master, say) must still end: the jobs
  // this worker holds come back through their leases.
  asio::awaitable<void> drain_watchdog() {
    auto give_up = std::chrono::steady_clock::now() + cfg_.drain_timeout + 5s;
    auto away = 0ms;
    while (std::chrono::steady_clock::now() < give_up && away < 3s) {
      co_await pause_for(100ms);
      away = work_.redis_ready() ? 0ms : away + 100ms;
    }
    spdlog::error("worker {}: {}; exiting, leases bring its jobs back", slot_,
                  away >= 3s ? "Redis has been unreachable for 3 s while draining"
                             : "the drain did not finish within drain_timeout + 5 s");
    spdlog::default_logger()->flush();
    ::_exit(exit_code::failure);
  }

  asio::awaitable<void> publish_loop() {
    for (;;) {
      co_await pause_for(100ms);
      work_.publish(my_slot());
    }
  }

  // This process's presence in Redis, for GET /v1/workers and the dashboard's Workers page
  // (docs/protocol.md, "Workers"): every 10 s (and when it starts draining) a description that
  // expires after 30 s, and its name in forq:workers, trimmed of names silent for a minute. A
  // beat Redis does not take within 5 s is dropped: the next one says the same, newer.
  asio::awaitable<void> presence_loop() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string name = std::string(host) + ":" + std::to_string(::getpid());
    const auto started = queue::epoch_ms();
    // A worker that stops cleanly leaves the page at once (a killed one, when its description
    // expires).
    work_.farewell.push("DEL", queue::keys::worker(name));
    work_.farewell.push("ZREM", queue::keys::workers, name);
    std::int64_t trimmed = 0;
    beat_.expires_after(1s); // the first once its connections had a moment to come up
    co_await beat_.async_wait(asio::as_tuple(asio::use_awaitable));
    for (;;) {
      if (work_.said_farewell) co_return; // a beat now would outlive the process
      const auto now = queue::epoch_ms();
      boost::json::object o;
      o["name"] = name;
      o["host"] = host;
      o["pid"] = ::getpid();
      o["slot"] = slot_;
      o["version"] = FORQ_VERSION;
      o["started_ms"] = started;
      o["beat_ms"] = now;
      o["state"] = draining_ ? "draining" : "running";
      o["redis"] = work_.fetching_ready() ? "connected"
                   : work_.redis_ready()  ? "fetches reconnecting"
                                          : "reconnecting";
      o["concurrency"] = cfg_.concurrency;
      o["queues"] = work_.describe_queues();
      redis::request req;
      req.push("SET", queue::keys::worker(name), serialize_utf8(o), "PX", "30000");
      req.push("ZADD", queue::keys::workers, std::to_string(now), name);
      if (now - trimmed >= 60000) {
        req.push("ZREMRANGEBYSCORE", queue::keys::workers, "-inf", std::to_string(now - 60000));
        trimmed = now;
      }
      redis::exec_options opts;
      opts.deadline = std::chrono::steady_clock::now() + 5s;
      auto r = co_await work_.commands().exec(req, opts);
      if (!r && r.error() == errc::redis_shutdown) co_return; // drained: the pool is closed
      beat_.expires_after(draining_ ? 30s : 10s);
      co_await beat_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  // Every 10 s, what the consumers did meanwhile to their queues' figures by the minute (the
  // dashboard's throughput and pick-up latency history).
  asio::awaitable<void> minutes_loop() {
    for (;;) {
      co_await pause_for(10s);
      if (draining_) co_return; // drain() adds the last of it
      co_await work_.flush_minutes(std::chrono::steady_clock::now() + 5s);
    }
  }

  process::slot_counters& my_slot() {
    return metrics_->slots[(slot_ - 1) % shared_metrics::max_slots];
  }

  const config& cfg_;
  unsigned slot_;
  shared_metrics* metrics_;
  asio::io_context ioc_{1};
  asio::signal_set signals_;
  consumers work_;
  http::http_context web_;
  asio::steady_timer beat_{ioc_}; // the presence loop's wait
  int code_ = exit_code::ok;
  int fatal_ = 0;
  bool draining_ = false;
};

} // namespace

int run_worker(const config& cfg, const std::string& url, unsigned slot, int listener_fd,
               process::shared_metrics* metrics, const queue::handler_map& program) {
  worker_life life(cfg, url, slot, listener_fd, metrics, program);
  return life.run();
}

} // namespace forq::worker
