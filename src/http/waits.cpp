// The HTTP API's waits for a job's end (http/waits.hpp).
#include "http/waits.hpp"

#include "queue/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace forq::http {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool terminal(const job_info& j) {
  return j.state == "completed" || j.state == "dead" || j.state == "cancelled";
}
} // namespace

asio::awaitable<expected<std::optional<job_info>>> finished_feed::wait(const std::string& queue,
                                                                       const std::string& id,
                                                                       clock::time_point until,
                                                                       milliseconds per_call) {
  auto within = [&] {
    redis::exec_options o;
    o.deadline = clock::now() + per_call;
    return o;
  };
  auto& w = queues_[queue];
  if (!w) w = std::make_shared<watched>();
  auto held = w; // kept while this wait runs
  if (held->waiters.empty() && !held->reading) {
    // Where the stream stands before the job is looked at: an end announced after it is news.
    redis::request req("XREVRANGE", queue::keys(queue).finished, "+", "-", "COUNT", "1");
    auto r = redis::connection::single(co_await conn_.exec(req, within()));
    if (!r) co_return r.error();
    held->last = "0-0";
    if (r->is_array() && !r->elements().empty() && r->elements()[0].is_array())
      held->last = r->elements()[0].elements()[0].str();
  }
  asio::steady_timer wake(co_await asio::this_coro::executor);
  waiter me{id, &wake};
  auto registered = held->waiters.emplace(id, &me);
  if (!held->reading) {
    held->reading = true;
    asio::co_spawn(co_await asio::this_coro::executor, read_loop(queue, held), asio::detached);
  }
  struct leave { // unregistered however the wait ends
    std::shared_ptr<watched> w;
    decltype(registered) at;
    ~leave() { w->waiters.erase(at); }
  } unregister{held, registered};

  auto again = milliseconds(100);
  for (;;) {
    forq::client c(conn_, within());
    auto found = co_await c.get_job(queue, id);
    if (!found || !*found || terminal(**found) || closed_ || clock::now() >= until) co_return found;
    // A waitable job: until the feed reads its end, with a look every 5 s anyway (an end can
    // be trimmed away under a burst). Another: looked at again, 100 ms growing to 1 s.
    const auto next =
        (*found)->waitable ? clock::now() + std::chrono::seconds(5) : clock::now() + again;
    again = std::min(again * 2, milliseconds(1000));
    wake.expires_at(std::min(next, until));
    co_await wake.async_wait(use_tuple);
  }
}

asio::awaitable<void> finished_feed::read_loop(std::string queue, std::shared_ptr<watched> w) {
  const auto key = queue::keys(queue).finished;
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!w->waiters.empty() && !closed_) {
    redis::request req("XREAD", "COUNT", "1000", "STREAMS", key, w->last);
    redis::exec_options o;
    o.deadline = clock::now() + std::chrono::seconds(2);
    auto r = redis::connection::single(co_await conn_.exec(req, o));
    bool more = false;
    if (r && r->is_array())
      for (const auto& stream : r->elements()) {
        if (!stream.is_array() || stream.elements().size() != 2) continue;
        const auto& entries = stream.elements()[1].elements();
        more = entries.size() == 1000;
        for (const auto& entry : entries) {
          w->last = entry.elements()[0].str();
          const auto& kv = entry.elements()[1].elements();
          for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
            if (kv[i].str() != "id") continue;
            auto [from, to] = w->waiters.equal_range(kv[i + 1].str());
            for (auto it = from; it != to; ++it)
              it->second->wake->cancel();
          }
        }
      }
    if (more) continue;
    pause.expires_after(milliseconds(50));
    co_await pause.async_wait(use_tuple);
  }
  w->reading = false;
  if (auto at = queues_.find(queue); at != queues_.end() && at->second == w && w->waiters.empty())
    queues_.erase(at);
}

void finished_feed::close() {
  closed_ = true;
  for (auto& [name, w] : queues_)
    for (auto& [id, one] : w->waiters)
      one->wake->cancel();
}

} // namespace forq::http
