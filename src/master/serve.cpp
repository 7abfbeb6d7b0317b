// `forq serve`, the master (docs/signals.md): brings up the embedded Redis (or takes the
// configured one), forks `workers` children (worker.cpp) and from then on only supervises:
// restarts a child that dies (with backoff in a crash loop), stops when a child exits with the
// fatal code, drains every child on SIGTERM/SIGINT, adds or removes one on SIGTTIN/SIGTTOU.
#include "backoff.hpp"
#include "cloexec.hpp"
#include "exit_codes.hpp"
#include "forq/redis_url.hpp"
#include "http/access.hpp"
#include "log.hpp"
#include "master/embedded_redis.hpp"
#include "master/master.hpp"
#include "master/supervisor.hpp"
#include "process/process_title.hpp"
#include "process/shared_metrics.hpp"
#include "worker/worker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace forq::master {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;
using process::set_process_title;
using process::shared_metrics;

// Keeps the embedded Redis alive while the service runs: a redis-server that dies is started
// again on the same AOF, with a pause that doubles up to 30 s while it keeps dying.
class redis_keeper {
 public:
  explicit redis_keeper(embedded_redis& redis)
      : redis_(redis) {}

  // Called on SIGCHLD: how redis-server ended, if it did (reaped), else nothing.
  std::optional<std::string> exited() { return redis_.poll_exit(); }

  // Starts it again after a pause. Returns false when it cannot be brought back.
  asio::awaitable<bool> restart(std::string how) {
    // A Redis that ran a good while before dying starts again quickly; one that keeps dying
    // waits longer each time, up to 30 s.
    auto now = std::chrono::steady_clock::now();
    if (now - last_restart_ > 60s) backoff_.reset();
    last_restart_ = now;
    auto pause = backoff_.next();
    spdlog::error("embedded redis-server exited ({}); restarting it in {} ms", how, pause.count());
    asio::steady_timer timer(co_await asio::this_coro::executor, pause);
    co_await timer.async_wait(asio::use_awaitable);
    if (auto ok = redis_.restart(); !ok) {
      spdlog::critical("cannot restart the embedded redis-server: {}", ok.error().message());
      co_return false;
    }
    co_return true;
  }

 private:
  embedded_redis& redis_;
  forq::backoff backoff_{{250ms, 30s}}; // 250 ms, 500 ms, 1 s, ... up to 30 s
  std::chrono::steady_clock::time_point last_restart_{};
};

// How a child ended, in an operator's words.
std::string describe_exit(int status) {
  if (WIFEXITED(status)) {
    int c = WEXITSTATUS(status);
    if (c == exit_code::fatal) return "exited with code 2 (fatal: see its last log lines)";
    return "exited with code " + std::to_string(c);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string why = sig == SIGKILL   ? " (out of memory, or killed by someone?)"
                      : sig == SIGSEGV ? " (a crash: segmentation fault)"
                      : sig == SIGABRT ? " (a crash: aborted)"
                      : sig == SIGBUS  ? " (a crash: bus error)"
                                       : "";
    return std::string("killed by SIG") + (sigabbrev_np(sig) ? sigabbrev_np(sig) : "?") + why;
  }
  return "ended (status " + std::to_string(status) + ")";
}

class master {
 public:
  master(asio::io_context& ioc, asio::signal_set& signals, const config& cfg, std::string url,
         embedded_redis* redis, int listener_fd, shared_metrics* metrics,
         std::function<expected<config>()> reload, const queue::handler_map& program)
      : ioc_(ioc)
      , signals_(signals)
      , cfg_(cfg)
      , url_(std::move(url))
      , redis_(redis)
      , listener_fd_(listener_fd)
      , metrics_(metrics)
      , reload_(std::move(reload))
      , program_(program) {
    if (redis_) keeper_.emplace(*redis_);
  }

  // Signal in, one handler per signal; the slot table (supervisor.hpp) decides, this class
  // forks, kills and arms timers.
  asio::awaitable<int> run() {
    for (unsigned i = 0; i < cfg_.effective_workers(); ++i)
      spawn(slots_.add());
    while (!(stopping_ && slots_.none_with_process())) {
      auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) continue;
      if (sig == SIGCHLD) {
        on_child_exit();
      } else if (sig == SIGTERM || sig == SIGINT) {
        if (stopping_ && sig == SIGINT) {
          spdlog::warn("second SIGINT: stopping the workers at once (SIGQUIT)");
          signal_children(SIGQUIT);
        } else {
          spdlog::info("received SIG{}; draining the workers (up to {} ms for jobs in flight)",
                       sigabbrev_np(sig), cfg_.drain_timeout.count());
          begin_stop(SIGTERM);
        }
      } else if (sig == SIGQUIT) {
        spdlog::info("received SIGQUIT; stopping the workers at once (their leases bring the "
                     "jobs they held back)");
        begin_stop(SIGQUIT);
      } else if (sig == SIGTTIN && !stopping_) {
        spawn(slots_.add());
        spdlog::info("SIGTTIN: now {}", counted(slots_.live(), "worker"));
      } else if (sig == SIGTTOU && !stopping_) {
        retire_newest("SIGTTOU");
      } else if (sig == SIGHUP && !stopping_) {
        reload();
      } else if (sig == SIGUSR1) {
        spdlog::info("SIGUSR1: forq logs to stderr only; there are no log files to reopen");
      }
    }
    co_return fatal_ ? fatal_ : exit_code::ok;
  }

 private:
  void on_child_exit() {
    // The embedded Redis: restarted beside the loop, so signals are still handled meanwhile
    // (its backoff can reach 30 s).
    auto how = keeper_ && !keeper_busy_ && !stopping_ ? keeper_->exited() : std::nullopt;
    if (how) {
      keeper_busy_ = true;
      asio::co_spawn(
          ioc_,
          [this, how = *how]() -> asio::awaitable<void> {
            bool back = co_await keeper_->restart(how);
            keeper_busy_ = false;
            if (!back) {
              fatal_ = exit_code::failure;
              begin_stop(SIGTERM);
            }
          },
          asio::detached);
    }
    reap();
  }

  void retire_newest(const char* why) {
    auto* s = slots_.retire_newest();
    if (!s) {
      spdlog::warn("{}: keeping the last worker", why);
      return;
    }
    stop_process(*s, SIGTERM);
    spdlog::info("{}: worker {} drains and is not replaced; {} remain{}", why, s->number,
                 counted(slots_.live(), "worker"), slots_.live() == 1 ? "s" : "");
  }

  // SIGHUP: the configuration from the same sources; refused -> the old one stays. Accepted ->
  // every worker is replaced, one at a time, the new one started before the old one drains,
  // so consuming never stops.
  void reload() {
    if (replacing_) {
      spdlog::warn("SIGHUP: still replacing workers after the last one; ignored");
      return;
    }
    auto loaded = reload_ ? reload_() : expected<config>(error(errc::invalid_value, "no source"));
    if (!loaded) {
      spdlog::error("SIGHUP: the new configuration is refused ({}); keeping the old one",
                    loaded.error().message());
      return;
    }
    auto next = *loaded;
    // What the master set up before forking cannot change under it.
    auto keep = [&](bool differs, const char* what) {
      if (differs)
        spdlog::warn("SIGHUP: {} cannot change without a restart; keeping the old value", what);
    };
    keep(next.redis_url != cfg_.redis_url, "redis.url");
    keep(next.redis_aof != cfg_.redis_aof, "redis.aof");
    keep(next.data_dir != cfg_.data_dir, "data_dir");
    keep(next.listen.host != cfg_.listen.host || next.listen.port != cfg_.listen.port, "listen");
    next.redis_url = cfg_.redis_url;
    next.redis_aof = cfg_.redis_aof;
    next.data_dir = cfg_.data_dir;
    next.listen = cfg_.listen;
    cfg_ = next;
    init_logging(cfg_.log_fmt, cfg_.log_lvl, "master");
    log_info_with("SIGHUP: configuration reloaded; replacing the workers one at a time", "config",
                  to_json(cfg_));
    replacing_ = true;
    asio::co_spawn(
        ioc_,
        [this]() -> asio::awaitable<void> {
          std::vector<unsigned> old;
          for (const auto& s : slots_.slots())
            if (!s.retiring) old.push_back(s.number);
          asio::steady_timer t(ioc_);
          for (unsigned number : old) {
            if (stopping_) break;
            spawn(slots_.add()); // the new one first: no gap
            t.expires_after(500ms);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            if (auto* s = slots_.retire(number)) stop_process(*s, SIGTERM);
          }
          // Then as many as the new configuration asks for.
          while (!stopping_ && slots_.live() < cfg_.effective_workers())
            spawn(slots_.add());
          while (!stopping_ && slots_.live() > cfg_.effective_workers())
            retire_newest("SIGHUP");
          replacing_ = false;
        },
        asio::detached);
  }

  void spawn(slot& s) {
    spdlog::default_logger()->flush();
    // Stop signals stay blocked in the child until its own signal_set listens (run_worker):
    // one sent meanwhile waits instead of being lost to the master's handlers.
    sigset_t stops, before;
    sigemptyset(&stops);
    for (int sig : {SIGTERM, SIGINT, SIGQUIT})
      sigaddset(&stops, sig);
    ::sigprocmask(SIG_BLOCK, &stops, &before);
    ioc_.notify_fork(asio::execution_context::fork_prepare);
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ioc_.notify_fork(asio::execution_context::fork_child);
      // The master's death reaches this child as SIGTERM: it drains and exits.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
      if (::getppid() != parent) ::_exit(exit_code::ok); // it died before prctl
      if (redis_) redis_->close_inherited_lock();
      set_log_role("worker " + std::to_string(s.number));
      set_process_title("forq: worker " + std::to_string(s.number));
      int code = forq::worker::run_worker(cfg_, url_, s.number, listener_fd_, metrics_, program_);
      spdlog::default_logger()->flush();
      ::_exit(code); // never return into the master's frames, never run its destructors
    }
    ioc_.notify_fork(asio::execution_context::fork_parent);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
      const auto wait = s.restarts.next();
      spdlog::error("cannot fork worker {}: {}; trying again in {}", s.number, std::strerror(errno),
                    say_delay(wait));
      schedule_respawn(s.number, wait);
      return;
    }
    const bool again = s.started != clock_type::time_point{};
    slots_.started(s, pid, clock_type::now());
    if (again && metrics_) metrics_->restarts.fetch_add(1);
    if (metrics_) metrics_->workers.store(slots_.with_process());
    spdlog::info("worker {} started (pid {})", s.number, pid);
  }

  void schedule_respawn(unsigned number, milliseconds delay) {
    asio::co_spawn(
        ioc_,
        [this, number, delay]() -> asio::awaitable<void> {
          asio::steady_timer t(ioc_, delay);
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
          if (stopping_) co_return;
          auto* s = slots_.find(number);
          if (s && s->state == slot_state::waiting && !s->retiring) spawn(*s);
        },
        asio::detached);
  }

  // Every worker that has exited: what it was running is no longer running, and the slot
  // table says what happens next.
  void reap() {
    std::vector<std::pair<unsigned, int>> ended; // (slot number, wait status)
    for (const auto& s : slots_.slots()) {
      int status = 0;
      if (s.pid > 0 && ::waitpid(s.pid, &status, WNOHANG) == s.pid)
        ended.emplace_back(s.number, status);
    }
    for (const auto& [number, status] : ended) {
      auto* s = slots_.find(number);
      auto how = describe_exit(status);
      // The queues it kept are free at once: the other workers see a 0 within a fraction of a
      // second (worker.cpp's keeper watch), not at their next look.
      if (metrics_)
        for (auto& k : metrics_->keepers) {
          auto held = static_cast<std::int32_t>(s->pid);
          k.compare_exchange_strong(held, 0);
        }
      auto ran = std::chrono::duration_cast<milliseconds>(clock_type::now() - s->started);
      if (metrics_)
        for (auto& q : metrics_->slots[(number - 1) % shared_metrics::max_slots].queues)
          q.in_flight.store(0);
      const bool fatal = WIFEXITED(status) && WEXITSTATUS(status) == exit_code::fatal;
      auto d = slots_.exited(*s, fatal, ran, stopping_); // (s may be gone after this)
      if (metrics_) metrics_->workers.store(slots_.with_process());
      switch (d.what) {
      case exit_decision::kind::none:
      case exit_decision::kind::forget:
        spdlog::info("worker {} {}", number, how);
        break;
      case exit_decision::kind::stop_forq:
        spdlog::critical("worker {} {}; not restarting it: stopping forq", number, how);
        fatal_ = d.exit_code;
        begin_stop(SIGTERM);
        break;
      case exit_decision::kind::restart:
        spdlog::error("worker {} {}; restarting in {}", number, how, say_delay(d.delay));
        schedule_respawn(number, d.delay);
        break;
      }
    }
  }

  void begin_stop(int sig) {
    if (!stopping_) {
      stopping_ = true;
      // A child that does not finish after the drain timeout and a margin is killed.
      asio::co_spawn(
          ioc_,
          [this]() -> asio::awaitable<void> {
            asio::steady_timer t(ioc_, cfg_.drain_timeout + 10s);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            for (auto& s : slots_.slots())
              if (s.pid > 0) {
                spdlog::error("worker {} did not stop in time; killing it", s.number);
                ::kill(s.pid, SIGKILL);
              }
          },
          asio::detached);
    }
    signal_children(sig);
    if (slots_.none_with_process()) signals_.cancel(); // nothing to wait for: let run() see it
  }

  void stop_process(slot& s, int sig) {
    if (s.pid <= 0) return;
    slots_.draining(s);
    ::kill(s.pid, sig);
  }

  void signal_children(int sig) {
    for (auto& s : slots_.slots())
      stop_process(s, sig);
  }

  asio::io_context& ioc_;
  asio::signal_set& signals_;
  config cfg_; // the master's own copy: SIGHUP replaces it
  std::string url_;
  embedded_redis* redis_;
  std::optional<redis_keeper> keeper_;
  bool keeper_busy_ = false; // a restart of the embedded Redis is under way
  int listener_fd_;
  shared_metrics* metrics_;
  std::function<expected<config>()> reload_;
  const queue::handler_map& program_; // the program's handlers (forq::run)
  bool replacing_ = false;
  slot_table slots_;
  bool stopping_ = false;
  int fatal_ = 0;
};

} // namespace

namespace {

// A worker holds a Redis connection per queue, and exec and http handlers a few descriptors per
// job running: with many queues the usual soft limit (1,024) is too low. Raise it as far as this
// configuration needs (not further: programs the exec handler starts inherit it), up to the
// hard limit, and say so when even that is short.
void raise_open_files(const config& cfg) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  const rlim_t want = 64 + cfg.queues.size() + 4 * static_cast<rlim_t>(cfg.concurrency);
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    const rlim_t before = r.rlim_cur;
    r.rlim_cur = r.rlim_max == RLIM_INFINITY ? want : std::min(want, r.rlim_max);
    if (r.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &r) == 0)
      spdlog::info("open files limit raised from {} to {} ({} queues, concurrency {})", before,
                   r.rlim_cur, cfg.queues.size(), cfg.concurrency);
    else
      r.rlim_cur = before;
  }
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want)
    spdlog::warn("each worker may need {} open files ({} queues, concurrency {}) but may open "
                 "only {}: raise the limit (ulimit -n; LimitNOFILE= under systemd)",
                 want, cfg.queues.size(), cfg.concurrency, r.rlim_cur);
}

} // namespace

int serve(const config& cfg, std::function<expected<config>()> reload,
          const queue::handler_map& program) {
  log_info_with(fmt::format("forq {} serve starting", FORQ_VERSION), "config", to_json(cfg));
  set_process_title("forq: master");

  // Signals arrive through the event loop from here on; SIGPIPE never kills us.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc(1);
  // Installed before Redis starts, so a SIGTERM during start-up is kept and acted on after it.
  asio::signal_set signals(ioc);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGTTIN, SIGTTOU, SIGHUP, SIGUSR1})
    signals.add(sig);

  std::unique_ptr<embedded_redis> redis;
  std::string url = cfg.redis_url;
  if (url.empty()) {
    auto started = embedded_redis::start({.data_dir = cfg.data_dir, .aof = cfg.redis_aof});
    if (!started) {
      spdlog::critical("{}", started.error().message());
      return exit_code::fatal;
    }
    redis = std::move(*started);
    url = redis->url();
  }

  spdlog::info("using Redis at {}", redact_url(url));
  raise_open_files(cfg);

  // The HTTP listener, bound before any fork: every worker accepts on it.
  asio::ip::tcp::acceptor listener(ioc);
  {
    boost::system::error_code ec;
    auto address =
        asio::ip::make_address(cfg.listen.host == "localhost" ? "127.0.0.1" : cfg.listen.host, ec);
    asio::ip::tcp::endpoint at(address, cfg.listen.port);
    if (!ec) listener.open(at.protocol(), ec);
    if (!ec) set_cloexec(listener.native_handle()); // workers are forked, never exec'd
    if (!ec) listener.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) listener.bind(at, ec);
    if (!ec) listener.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      spdlog::critical("cannot listen on {}:{}: {}; give another --listen", cfg.listen.host,
                       cfg.listen.port, ec.message());
      return exit_code::fatal;
    }
    auto bound = listener.local_endpoint();
    spdlog::info("listening on http://{}:{} (/healthz, /readyz, /metrics, /v1/...)",
                 bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                         : bound.address().to_string(),
                 bound.port());
    // Reachable from other hosts: say who may change things (docs/http.md, "Access").
    if (!http::is_loopback(bound.address())) {
      if (!cfg.api_token.empty())
        spdlog::info("the API is reachable from the network; requests that change something "
                     "need the api_token");
      else if (cfg.api_open)
        spdlog::warn("the API is reachable from the network and open (--api-open): anyone who "
                     "can reach {} may enqueue jobs and purge dead ones; set api_token "
                     "(FORQ_API_TOKEN) unless the network is yours alone",
                     cfg.listen.host);
      else
        spdlog::warn("the API is reachable from the network without an api_token: requests "
                     "that change something are taken from this machine only (others get 403); "
                     "set api_token (FORQ_API_TOKEN), or --api-open on purpose");
    }
  }
  auto* metrics = shared_metrics::create();
  if (!metrics) spdlog::warn("no shared memory for metrics: /metrics will read zero");

  spdlog::info("master ready (pid {}); starting {} worker{}", ::getpid(), cfg.effective_workers(),
               cfg.effective_workers() == 1 ? "" : "s");

  int code = exit_code::failure;
  {
    master m(ioc, signals, cfg, url, redis.get(), listener.native_handle(), metrics,
             std::move(reload), program);
    asio::co_spawn(ioc, m.run(), [&](std::exception_ptr e, int result) {
      if (e) std::rethrow_exception(e);
      code = result;
      ioc.stop();
    });
    ioc.run();
  }

  redis.reset(); // stops redis-server last, after every worker has gone
  spdlog::info("forq serve stopped");
  return code;
}

} // namespace forq::master
