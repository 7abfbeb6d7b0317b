#include "support/fake_redis.hpp"

#include "forq/redis/reply.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace forq::test {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct fake_redis::shared {
  shared(asio::any_io_executor ex, script s)
      : acceptor(ex)
      , run_script(std::move(s)) {}
  tcp::acceptor acceptor;
  script run_script;
  std::vector<fake_command> commands;
  std::vector<std::weak_ptr<tcp::socket>> sockets;
  std::size_t connections = 0;
  std::size_t ops = 0;
  std::size_t outstanding = 0;
  std::size_t max_outstanding = 0;
  bool stopped = false;
};

namespace {

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

asio::awaitable<void> answer(std::shared_ptr<fake_redis::shared> st, std::shared_ptr<tcp::socket> s,
                             fake_action act) {
  if (act.delay.count() > 0) co_await pause(act.delay);
  if (act.split_at > 0 && act.split_at < act.bytes.size()) {
    co_await asio::async_write(*s, asio::buffer(act.bytes.data(), act.split_at), use_tuple);
    co_await pause(std::chrono::milliseconds(2)); // let the client read the first part alone
    co_await asio::async_write(
        *s, asio::buffer(act.bytes.data() + act.split_at, act.bytes.size() - act.split_at),
        use_tuple);
  } else {
    co_await asio::async_write(*s, asio::buffer(act.bytes), use_tuple);
  }
  --st->outstanding;
  if (act.what == fake_action::kind::reply_then_close) s->close();
}

asio::awaitable<void> session(std::shared_ptr<fake_redis::shared> st,
                              std::shared_ptr<tcp::socket> s, std::size_t conn) {
  redis::reply_parser parser; // requests are RESP arrays: the reply parser reads them too
  std::vector<char> buf(4096);
  // Answers leave in order: each waits for the one before it.
  auto ordered = std::make_shared<asio::steady_timer>(s->get_executor());
  for (;;) {
    auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), use_tuple);
    if (ec || st->stopped) co_return;
    parser.feed({buf.data(), n});
    for (redis::reply r; parser.next(r) == redis::reply_parser::status::reply;) {
      fake_command cmd{{}, conn, st->ops++};
      for (const auto& e : r.elements())
        cmd.argv.emplace_back(e.str());
      st->commands.push_back(cmd);
      auto act = st->run_script(cmd);
      switch (act.what) {
      case fake_action::kind::close:
        s->close();
        co_return;
      case fake_action::kind::silence:
        continue;
      case fake_action::kind::reply:
      case fake_action::kind::reply_then_close:
        st->max_outstanding = std::max(st->max_outstanding, ++st->outstanding);
        if (act.delay.count() == 0 && act.split_at == 0) {
          co_await answer(st, s, std::move(act));
          if (!s->is_open()) co_return;
        } else {
          // Slow answers run beside the read loop, so more commands arrive meanwhile.
          co_await answer(st, s, std::move(act));
        }
      }
    }
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<fake_redis::shared> st) {
  for (;;) {
    auto s = std::make_shared<tcp::socket>(st->acceptor.get_executor());
    auto [ec] = co_await st->acceptor.async_accept(*s, use_tuple);
    if (ec || st->stopped) co_return;
    s->set_option(tcp::no_delay(true));
    st->sockets.push_back(s);
    asio::co_spawn(st->acceptor.get_executor(), session(st, s, st->connections++), asio::detached);
  }
}

} // namespace

fake_redis::fake_redis(asio::any_io_executor ex, script s, std::uint16_t port)
    : state_(std::make_shared<shared>(ex, std::move(s))) {
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  state_->acceptor.open(ep.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(ep);
  state_->acceptor.listen();
  port_ = state_->acceptor.local_endpoint().port();
  asio::co_spawn(ex, accept_loop(state_), asio::detached);
}

fake_redis::~fake_redis() {
  stop();
}

const std::vector<fake_command>& fake_redis::commands() const {
  return state_->commands;
}
std::size_t fake_redis::connections() const {
  return state_->connections;
}
std::size_t fake_redis::max_outstanding() const {
  return state_->max_outstanding;
}

void fake_redis::stop() {
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (auto& w : state_->sockets)
    if (auto s = w.lock()) s->close(ignored);
}

fake_action fake_redis::standard(const fake_command& c) {
  const auto& name = c.argv.empty() ? std::string() : c.argv[0];
  if (name == "PING") return fake_action::status("PONG");
  if (name == "ECHO" && c.argv.size() == 2) return fake_action::bulk(c.argv[1]);
  return fake_action::status("OK"); // AUTH, SELECT, CLIENT SETNAME, SET, ...
}

} // namespace forq::test
