// The program the chaos tests run (tests/chaos/chaos_test.cpp): forq itself (forq::run) plus
// one handler, `count`, whose side effect the tests count. It waits {"ms": M} on the event loop
// (or, with {"block_ms": B}, blocks its whole thread for B ms, as a badly written handler
// would), then appends "<seq>\n" to the file named by $CHAOS_LOG in one O_APPEND write, and
// succeeds. A job whose line is missing was lost; a line twice is a duplicate run.
#include <forq/forq.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

namespace asio = boost::asio;

// Opened on first use in each worker process (after fork).
int log_fd() {
  static int fd = [] {
    const char* path = std::getenv("CHAOS_LOG");
    return path ? ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  }();
  return fd;
}

asio::awaitable<forq::result> count(const forq::job& j, forq::context&) {
  auto payload = boost::json::parse(j.payload).as_object();
  auto seq = payload.at("seq").as_int64();
  if (auto* block = payload.if_contains("block_ms"))
    std::this_thread::sleep_for(std::chrono::milliseconds(block->as_int64()));
  if (auto* ms = payload.if_contains("ms"); ms && ms->as_int64() > 0) {
    asio::steady_timer t(co_await asio::this_coro::executor,
                         std::chrono::milliseconds(ms->as_int64()));
    co_await t.async_wait(asio::use_awaitable);
  }
  auto line = std::to_string(seq) + "\n";
  if (::write(log_fd(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    co_return forq::result::retry_later("cannot write the chaos log");
  co_return forq::result::success();
}

} // namespace

int main(int argc, char** argv) {
  forq::handler_map handlers;
  handlers.emplace("count", count);
  return forq::run(argc, argv, std::move(handlers));
}
