#include "master/embedded_redis.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace forq {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return std::string("killed by SIG") + (name ? name : std::to_string(sig));
  }
  return "status " + std::to_string(status);
}

std::optional<std::string> find_program(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return ::access(program.c_str(), X_OK) == 0 ? std::optional(program) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = (fs::path(dir.empty() ? "." : dir) / program).string();
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// The last lines of redis.log, to say why redis-server would not start.
std::string log_tail(const fs::path& log, std::size_t lines = 4) {
  std::ifstream in(log);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out.empty() ? "(its log is empty)" : out;
}

std::optional<pid_t> read_pid(const fs::path& file) {
  std::ifstream in(file);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// Alive and running: a zombie (exited, not yet reaped by its parent) no longer counts.
bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return !(close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z');
}

// Does /proc/<pid>/cmdline mention this socket? Then it is a redis-server of this data directory
// and not an unrelated process that reused the pid.
bool serves_socket(pid_t pid, const fs::path& socket) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find(socket.string()) != std::string::npos;
}

// Waits up to `limit` for pid (our child) to exit; true if it did (and was reaped).
bool wait_exit(pid_t pid, std::chrono::milliseconds limit, int& status) {
  auto deadline = steady::now() + limit;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// Waits up to `limit` for an unrelated process to disappear.
bool wait_gone(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = steady::now() + limit;
  while (process_alive(pid)) {
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

enum class ping_result { pong, loading, no_answer };

ping_result ping(const fs::path& socket) {
  timeval tv{0, 200 * 1000};
  redisContext* c = redisConnectUnixWithTimeout(socket.c_str(), tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return ping_result::no_answer;
  }
  redisSetTimeout(c, tv);
  auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
  ping_result result = ping_result::no_answer;
  if (reply) {
    std::string_view text(reply->str ? reply->str : "", reply->str ? reply->len : 0);
    if (reply->type == REDIS_REPLY_STATUS && text == "PONG")
      result = ping_result::pong;
    else if (reply->type == REDIS_REPLY_ERROR && text.starts_with("LOADING"))
      result = ping_result::loading;
    freeReplyObject(reply);
  }
  redisFree(c);
  return result;
}

} // namespace

void embedded_redis::close_inherited_lock() {
  if (lock_fd_ >= 0) ::close(lock_fd_); // the owner's descriptor keeps the lock
  lock_fd_ = -1;
}

embedded_redis::embedded_redis(embedded_redis_options options, fs::path dir, int lock_fd)
    : options_(std::move(options))
    , dir_(std::move(dir))
    , socket_(dir_ / "redis.sock")
    , url_("unix://" + socket_.string())
    , lock_fd_(lock_fd) {}

embedded_redis::~embedded_redis() {
  stop();
  if (lock_fd_ >= 0) ::close(lock_fd_); // releases the data directory
}

expected<std::unique_ptr<embedded_redis>>
embedded_redis::start(const embedded_redis_options& options) {
  // Everything that can be checked without starting anything comes first.
  if (!find_program(options.program))
    return error(errc::embedded_redis_failed,
                 options.program +
                     " not found on PATH: install the Debian package redis-server "
                     "(apt-get install redis-server), or give forq a Redis with --redis URL");

  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec)
    return error(errc::embedded_redis_failed, "cannot create data directory " +
                                                  options.data_dir.string() + ": " + ec.message() +
                                                  "; choose another with --data-dir");
  fs::path dir = fs::canonical(options.data_dir, ec);
  if (ec)
    return error(errc::embedded_redis_failed, "cannot resolve data directory " +
                                                  options.data_dir.string() + ": " + ec.message());
  auto socket = dir / "redis.sock";
  if (socket.string().size() >= sizeof(sockaddr_un{}.sun_path))
    return error(errc::embedded_redis_failed,
                 "data directory " + dir.string() + " is too deep: the socket path " +
                     socket.string() + " is longer than the " +
                     std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                     " bytes a unix socket allows; choose a shorter --data-dir");

  // One owner per data directory. The lock lives as long as this process (and its forks).
  auto lock_path = dir / "forq.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return error(errc::embedded_redis_failed, "data directory " + dir.string() +
                                                  " is not writable: cannot open " +
                                                  lock_path.string() + ": " + errno_text(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      auto owner = read_pid(lock_path);
      return error(errc::embedded_redis_failed,
                   "data directory " + dir.string() + " is in use by another forq serve" +
                       (owner ? " (pid " + std::to_string(*owner) + ")" : std::string()) +
                       "; stop it, or give this one its own --data-dir");
    }
    return error(errc::embedded_redis_failed,
                 "cannot lock " + lock_path.string() + ": " + errno_text(err));
  }
  auto pid_text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid_text.data(), pid_text.size(), 0) < 0) {
    int err = errno;
    ::close(fd);
    return error(errc::embedded_redis_failed,
                 "data directory " + dir.string() + " is not writable: " + errno_text(err));
  }

  std::unique_ptr<embedded_redis> self(new embedded_redis(options, dir, fd));

  // Whatever a crashed run left behind. We hold the lock, so nothing alive owns these files.
  auto pid_file = dir / "redis.pid";
  if (auto old = read_pid(pid_file); old && process_alive(*old) && serves_socket(*old, socket)) {
    spdlog::warn("stopping orphaned redis-server (pid {}) left in {} by an earlier run", *old,
                 dir.string());
    ::kill(*old, SIGTERM);
    if (!wait_gone(*old, options.stop_timeout)) {
      ::kill(*old, SIGKILL);
      wait_gone(*old, 2s);
    }
  }
  for (const auto& stale : {pid_file, socket}) {
    if (fs::exists(fs::symlink_status(stale))) {
      spdlog::info("removing stale {} from an earlier run", stale.string());
      fs::remove(stale, ec);
    }
  }

  if (auto ok = self->spawn_and_wait(); !ok) return ok.error();
  return self;
}

expected<> embedded_redis::spawn_and_wait() {
  auto program = find_program(options_.program);
  if (!program)
    return error(errc::embedded_redis_failed, options_.program + " is no longer on PATH");
  auto log_path = dir_ / "redis.log";
  std::vector<std::string> args{
      *program,
      "--port",
      "0", // unix socket only: nothing else on the machine can reach it
      "--unixsocket",
      socket_.string(),
      "--unixsocketperm",
      "700",
      "--dir",
      dir_.string(),
      "--pidfile",
      (dir_ / "redis.pid").string(),
      "--logfile",
      log_path.string(),
      "--daemonize",
      "no",
      "--save",
      "", // the AOF (below) is the durability; no RDB snapshots on top
      "--appendonly",
      options_.aof == aof_policy::off ? "no" : "yes",
      "--appendfsync",
      options_.aof == aof_policy::off ? "everysec" : std::string(to_string(options_.aof)),
  };
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0)
    return error(errc::embedded_redis_failed,
                 "cannot write " + log_path.string() + ": " + errno_text(errno));

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    return error(errc::embedded_redis_failed, "cannot fork redis-server: " + errno_text(err));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);      // our owner's death stops us, cleanly
    if (::getppid() != parent) ::_exit(127); // it died before prctl took effect
    ::setpgid(0, 0); // a terminal's Ctrl-C reaches forq, which stops Redis last
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log_fd, 1); // early errors (bad arguments) are printed before the log file opens
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  spdlog::info("starting embedded redis-server (pid {}) on {} with AOF {}", pid_, socket_.string(),
               to_string(options_.aof));

  auto started = steady::now();
  auto last_note = started;
  while (true) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return error(errc::embedded_redis_failed,
                   "embedded redis-server exited during start-up (" + describe_status(status) +
                       "); " + log_path.string() + " says: " + log_tail(log_path));
    }
    auto answer = ping(socket_);
    if (answer == ping_result::pong) break;
    auto now = steady::now();
    if (answer == ping_result::loading) {
      if (now - last_note >= 5s) {
        spdlog::info("embedded redis-server is loading its data ({} s so far)",
                     std::chrono::duration_cast<std::chrono::seconds>(now - started).count());
        last_note = now;
      }
    } else if (now - started >= options_.start_timeout) {
      stop();
      return error(errc::embedded_redis_failed,
                   "embedded redis-server did not answer PING on " + socket_.string() + " within " +
                       std::to_string(options_.start_timeout.count()) + " ms; " +
                       log_path.string() + " says: " + log_tail(log_path));
    }
    std::this_thread::sleep_for(10ms);
  }
  spdlog::info("embedded redis-server ready on {}", url_);
  return {};
}

std::optional<std::string> embedded_redis::poll_exit() {
  if (pid_ < 0) return "not running";
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  pid_ = -1;
  return r == -1 ? std::string("gone (") + errno_text(errno) + ")" : describe_status(status);
}

expected<> embedded_redis::restart() {
  if (pid_ >= 0) return {};
  std::error_code ec;
  fs::remove(socket_, ec); // left behind if it died without shutting down
  return spawn_and_wait();
}

void embedded_redis::stop() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGTERM); // redis-server writes its AOF, removes its socket and exits
  int status = 0;
  if (!wait_exit(pid_, options_.stop_timeout, status)) {
    spdlog::warn("embedded redis-server (pid {}) did not stop within {} ms; killing it", pid_,
                 options_.stop_timeout.count());
    ::kill(pid_, SIGKILL);
    wait_exit(pid_, 5s, status);
    std::error_code ec;
    fs::remove(socket_, ec);
    fs::remove(dir_ / "redis.pid", ec);
  }
  spdlog::info("embedded redis-server (pid {}) stopped ({})", pid_, describe_status(status));
  pid_ = -1;
}

std::optional<std::string> find_embedded_redis(const fs::path& data_dir) {
  std::error_code ec;
  auto dir = fs::canonical(data_dir, ec);
  if (ec) return std::nullopt;
  int fd = ::open((dir / "forq.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // A lock we can take means no forq serve holds this directory.
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  auto socket = dir / "redis.sock";
  if (!held || !fs::exists(socket, ec)) return std::nullopt;
  return "unix://" + socket.string();
}

} // namespace forq
