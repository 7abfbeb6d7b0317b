#include "forq/handlers.hpp"
#include "queue/job.hpp"
#include "utf8.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace forq::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct fd_pair {
  int read = -1, write = -1;
};

fd_pair make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  return {fds[0], fds[1]};
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("killed by SIG") + (name ? name : "?");
  }
  return "ended with status " + std::to_string(status);
}

// Reads everything from `in`, keeping the first `keep_head` bytes or the last `keep_tail`.
asio::awaitable<void> drain_into(asio::posix::stream_descriptor& in, std::string& kept,
                                 std::size_t& total, std::size_t keep_head, std::size_t keep_tail) {
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await in.async_read_some(asio::buffer(buf), use_tuple);
    if (n > 0) {
      total += n;
      if (keep_head) {
        if (kept.size() < keep_head) kept.append(buf, std::min(n, keep_head - kept.size()));
      } else {
        kept.append(buf, n);
        if (kept.size() > keep_tail) kept.erase(0, kept.size() - keep_tail);
      }
    }
    if (ec) co_return;
  }
}

// The exit status of `pid`, waited for without blocking the loop: on its pidfd when the kernel
// has them, else by polling waitpid.
asio::awaitable<int> wait_exit(pid_t pid) {
  auto ex = co_await asio::this_coro::executor;
  int status = 0;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    asio::posix::stream_descriptor d(ex, pidfd);
    co_await d.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
    ::waitpid(pid, &status, 0); // readable: it has exited, this does not block
    co_return status;
  }
  asio::steady_timer t(ex);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    t.expires_after(milliseconds(5));
    co_await t.async_wait(use_tuple);
  }
  co_return status;
}

// A started command: its pid and our ends of its pipes; or, when it could not start, the
// attempt's outcome.
struct started {
  pid_t pid = -1;
  int stdin_w = -1, stdout_r = -1, stderr_r = -1, progress_r = -1;
  std::optional<queue::outcome> refused;
};

// The job's environment (docs/handlers.md): the worker's, less every FORQ_* variable (forq's
// own settings, among them FORQ_API_TOKEN and FORQ_REDIS_URL with its password), plus
// FORQ_JOB_ID, FORQ_ATTEMPT and FORQ_QUEUE. An operator gives a command a value on purpose under
// a name of its own.
std::vector<std::string> job_environment(const queue::delivered_job& job) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).substr(0, 5) != "FORQ_") env.emplace_back(*e);
  env.push_back("FORQ_JOB_ID=" + job.id);
  env.push_back("FORQ_ATTEMPT=" + std::to_string(job.attempt + 1));
  env.push_back("FORQ_QUEUE=" + job.queue);
  return env;
}

// posix_spawnp with stdin, stdout and stderr on pipes, in a process group of its own (killed
// whole), with default signal dispositions and an empty mask (the worker ignores SIGPIPE and
// handles others through Asio).
started spawn_command(const exec_options& options, const queue::delivered_job& job) {
  auto in = make_pipe(), out = make_pipe(), err = make_pipe(), prog = make_pipe();
  if (in.read < 0 || out.read < 0 || err.read < 0 || prog.read < 0) {
    close_fd(in.read), close_fd(in.write), close_fd(out.read), close_fd(out.write);
    close_fd(err.read), close_fd(err.write), close_fd(prog.read), close_fd(prog.write);
    return {.refused = queue::outcome::retry_later(std::string("exec: no pipes: ") +
                                                   std::strerror(errno))};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write, 2);
  posix_spawn_file_actions_adddup2(&actions, prog.write, 3); // progress lines
  // Nothing else crosses: not the worker's sockets (each is close-on-exec already) nor anything
  // a library user's program opened without O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  auto env_storage = job_environment(job);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  auto command = options.command; // argv needs mutable strings
  for (auto& a : command)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  started s;
  int rc = ::posix_spawnp(&s.pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_fd(in.read), close_fd(out.write), close_fd(err.write), close_fd(prog.write);
  if (rc != 0) {
    close_fd(in.write), close_fd(out.read), close_fd(err.read), close_fd(prog.read);
    // Retrying cannot make a missing program appear: dead at once, saying so.
    s.refused = queue::outcome::failure("exec: cannot run " + options.command[0] + ": " +
                                        std::strerror(rc));
    return s;
  }
  s.stdin_w = in.write, s.stdout_r = out.read, s.stderr_r = err.read, s.progress_r = prog.read;
  return s;
}

// What a command did: its exit status (or the timeout), and what it wrote.
struct finished {
  std::string output, errors;
  std::size_t output_bytes = 0, error_bytes = 0;
  bool timed_out = false;
  int status = 0;
};

// Reads the command's progress lines (fd 3) and reports each through the context; a line that
// is not JSON, or too long, is said once per attempt in the log and otherwise ignored.
asio::awaitable<void> read_progress(asio::posix::stream_descriptor& in, queue::context& ctx,
                                    const queue::delivered_job& job) {
  std::string line;
  bool warned = false, skipping = false;
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await in.async_read_some(asio::buffer(buf), use_tuple);
    for (std::size_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (!skipping) line.push_back(buf[i]);
        if (line.size() > queue::context::max_progress) skipping = true, line.clear();
        continue;
      }
      expected<> r =
          skipping ? expected<>(error(errc::invalid_value,
                                      "a line over " +
                                          std::to_string(queue::context::max_progress) + " bytes"))
                   : ctx.progress(line);
      if (!r && !warned) {
        warned = true;
        spdlog::warn("job {} of queue {}: a progress line of its command was ignored: {}",
                     printable(job.id), printable(job.queue), r.error().message());
      }
      line.clear();
      skipping = false;
    }
    if (ec) co_return;
  }
}

// Feeds the job to the command's stdin and reads its output while it runs (a full pipe would
// stall it), until it exits or the timeout kills its group.
asio::awaitable<finished> run_command(const exec_options& options, const queue::delivered_job& job,
                                      queue::context& ctx, const started& cmd,
                                      std::int64_t deadline_ms) {
  auto ex = co_await asio::this_coro::executor;
  asio::posix::stream_descriptor stdin_d(ex, cmd.stdin_w), stdout_d(ex, cmd.stdout_r),
      stderr_d(ex, cmd.stderr_r), progress_d(ex, cmd.progress_r);
  finished f;
  const pid_t pid = cmd.pid;

  auto feed = [&]() -> asio::awaitable<void> {
    auto text = queue::handoff_json(job, deadline_ms);
    co_await asio::async_write(stdin_d, asio::buffer(text), use_tuple); // EPIPE: it did not read
    boost::system::error_code ignored;
    stdin_d.close(ignored);
  };
  auto run = [&]() -> asio::awaitable<void> {
    co_await (feed() && drain_into(stdout_d, f.output, f.output_bytes, options.max_output, 0) &&
              drain_into(stderr_d, f.errors, f.error_bytes, 0, options.stderr_tail) &&
              read_progress(progress_d, ctx, job));
  };
  // The process's exit, or the timeout, which kills its group (and then its exit comes).
  // Plain timer cancellation links the two: an operation's own cancellation is not relied on.
  asio::steady_timer timeout(ex, options.timeout);
  // After the exit, what it wrote is read for at most 2 s more; then the pipes are closed
  // (something outside its group, a daemon it started, may hold them open forever).
  asio::steady_timer grace(ex, asio::steady_timer::time_point::max());
  bool ended = false, io_done = false;
  // A cancel (the context's): SIGTERM to the group, SIGKILL after the grace; the exit follows.
  asio::steady_timer ended_bell(ex, asio::steady_timer::time_point::max());
  auto waited = [&]() -> asio::awaitable<void> {
    f.status = co_await wait_exit(pid);
    // Everything left in its group goes too: whatever still holds its pipes open (a
    // background child) cannot keep the attempt alive.
    ::kill(-pid, SIGKILL);
    ended = true;
    timeout.cancel();
    ended_bell.cancel();
    grace.expires_after(milliseconds(2000));
  };
  auto deadline = [&]() -> asio::awaitable<void> {
    auto [ec] = co_await timeout.async_wait(use_tuple);
    if (!ec && !ended) {
      f.timed_out = true;
      ::kill(-pid, SIGKILL);
    }
  };
  auto on_cancel = [&]() -> asio::awaitable<void> {
    auto bell = [&]() -> asio::awaitable<void> { co_await ended_bell.async_wait(use_tuple); };
    co_await (ctx.until_cancelled() || bell());
    if (ended || !ctx.cancelled()) co_return;
    ::kill(-pid, SIGTERM);
    ended_bell.expires_after(options.cancel_grace);
    auto [ec] = co_await ended_bell.async_wait(use_tuple);
    if (!ec && !ended) ::kill(-pid, SIGKILL);
  };
  auto supervise = [&]() -> asio::awaitable<void> {
    co_await (waited() && deadline() && on_cancel());
  };
  auto io = [&]() -> asio::awaitable<void> {
    co_await run();
    io_done = true;
    grace.cancel();
  };
  auto closer = [&]() -> asio::awaitable<void> {
    for (;;) {
      auto [ec] = co_await grace.async_wait(use_tuple);
      if (io_done) co_return;
      if (!ec) { // 2 s after the exit and still not at EOF: stop reading
        boost::system::error_code ignored;
        stdin_d.close(ignored);
        stdout_d.close(ignored);
        stderr_d.close(ignored);
        progress_d.close(ignored);
        co_return;
      }
      // Cancelled because the exit re-armed it: wait again.
    }
  };
  co_await (supervise() && io() && closer());
  co_return f;
}

// The attempt's outcome from how the command ended (docs/handlers.md).
queue::outcome outcome_of(const exec_options& options, finished f) {
  auto tail = f.errors;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r'))
    tail.pop_back();
  auto reason = [&](const std::string& head) { return tail.empty() ? head : head + ": " + tail; };
  if (f.timed_out)
    return queue::outcome::retry_later(reason("exec: timed out after " +
                                              std::to_string(options.timeout.count()) +
                                              " ms; its process group was killed"));
  if (WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0) {
    if (f.output_bytes > options.max_output) {
      boost::json::object note;
      note["output_truncated"] = true;
      note["output_bytes"] = f.output_bytes;
      note["kept_bytes"] = f.output.size();
      note["head"] = to_utf8(f.output); // a cut may split a character
      return queue::outcome::success(boost::json::serialize(note));
    }
    while (!f.output.empty() && (f.output.back() == '\n' || f.output.back() == '\r'))
      f.output.pop_back();
    return queue::outcome::success(f.output.empty() ? "null" : f.output);
  }
  if (WIFEXITED(f.status) && WEXITSTATUS(f.status) == options.retry_exit_code)
    return queue::outcome::retry_later(reason(describe(f.status) + " (retry later)"));
  if (WIFEXITED(f.status) && WEXITSTATUS(f.status) == options.fail_exit_code)
    return queue::outcome::failure(reason(describe(f.status) + " (fail now, no retry)"));
  return queue::outcome::retry_later(reason(describe(f.status)));
}

} // namespace

queue::handler exec(exec_options options) {
  // A command that exits without reading its stdin must cost its attempt an EPIPE, not the
  // whole process a SIGPIPE (forq serve ignores SIGPIPE anyway; library users get the same).
  std::signal(SIGPIPE, SIG_IGN);
  return [options](const queue::delivered_job& job,
                   queue::context& ctx) -> asio::awaitable<queue::outcome> {
    if (options.command.empty()) co_return queue::outcome::failure("exec: no command configured");
    // The command is stopped its own way on a cancel (SIGTERM, then SIGKILL): the awaits below
    // must not be aborted under it, or its exit and output would be lost.
    co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
    if (ctx.cancelled()) co_return queue::outcome::cancelled(ctx.cancel_reason());
    // Its own timeout kills the group at once; the queue's (the context's deadline, when it
    // comes first) is a cancel: SIGTERM, then SIGKILL after the grace.
    auto deadline = std::chrono::system_clock::now() + options.timeout;
    if (auto d = ctx.deadline()) deadline = std::min(deadline, *d);
    auto cmd = spawn_command(options, job);
    if (cmd.refused) co_return *cmd.refused;
    auto f = co_await run_command(
        options, job, ctx, cmd,
        std::chrono::duration_cast<milliseconds>(deadline.time_since_epoch()).count());
    if (ctx.cancelled() && !(WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0))
      co_return queue::outcome::cancelled(ctx.cancel_reason());
    co_return outcome_of(options, std::move(f));
  };
}

} // namespace forq::handlers
