#include "queue/history.hpp"

#include "queue/protocol.hpp"
#include "redis/script.hpp"
#include "scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

namespace forq::queue::history {

std::size_t bucket_of(std::int64_t us) {
  return static_cast<std::size_t>(std::lower_bound(bounds_us.begin(), bounds_us.end(), us) -
                                  bounds_us.begin());
}

std::optional<double> quantile_ms(const buckets& counts, double q) {
  std::uint64_t total = 0;
  for (auto c : counts)
    total += c;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const auto n = static_cast<double>(counts[i]);
    if (counts[i] > 0 && below + n >= rank) {
      if (i == bounds_us.size()) return static_cast<double>(bounds_us.back()) / 1000.0;
      const double lo = i == 0 ? 0.0 : static_cast<double>(bounds_us[i - 1]);
      const double hi = static_cast<double>(bounds_us[i]);
      const double at = lo + (hi - lo) * std::clamp((rank - below) / n, 0.0, 1.0);
      return std::round(at) / 1000.0; // µs precision, in ms
    }
    below += n;
  }
  return static_cast<double>(bounds_us.back()) / 1000.0;
}

bool delta::empty() const {
  return done == 0 && failed == 0 &&
         std::all_of(pickup.begin(), pickup.end(), [](auto n) { return n == 0; });
}

namespace {

// minutes.lua's ARGV for one delta: this minute, the minutes kept, then figure/count pairs.
std::vector<std::string> args_of(const delta& d, std::int64_t minute) {
  std::vector<std::string> a{std::to_string(minute), std::to_string(kept_minutes)};
  auto add = [&](std::string figure, std::uint64_t n) {
    if (n == 0) return;
    a.push_back(std::move(figure));
    a.push_back(std::to_string(n));
  };
  add("d", d.done);
  add("f", d.failed);
  for (std::size_t i = 0; i < d.pickup.size(); ++i)
    add("l" + std::to_string(i), d.pickup[i]);
  return a;
}

} // namespace

boost::asio::awaitable<expected<std::vector<bool>>>
add(redis::connection& conn, const std::vector<std::pair<std::string, delta>>& deltas,
    std::int64_t minute, redis::exec_options opts) {
  const auto& script = detail::scripts().minutes;
  std::vector<std::string> hashes;
  std::vector<std::vector<std::string>> args;
  std::vector<redis::request> reqs(1);
  // On a cluster each queue's add is a request of its own: one request spanning primaries fails
  // whole when one of them is down, and the queues the others took would be added again.
  const bool one_each = conn.cluster() != nullptr;
  for (const auto& [queue, d] : deltas) {
    hashes.push_back(keys(queue).minutes);
    args.push_back(args_of(d, minute));
    std::vector<std::string_view> words;
    words.push_back(script.sha1());
    words.push_back("1");
    words.push_back(hashes.back());
    words.insert(words.end(), args.back().begin(), args.back().end());
    if (one_each && !reqs.back().empty()) reqs.emplace_back();
    reqs.back().push_range("EVALSHA", words);
  }
  std::vector<bool> added(deltas.size(), false);
  if (deltas.empty()) co_return added;
  // The requests go at once (a primary that is down holds up only its own queues), each in a
  // coroutine of its own that owns what it uses: this one may be cancelled while they are out.
  struct out {
    explicit out(boost::asio::any_io_executor ex)
        : done(ex, std::chrono::steady_clock::time_point::max()) {}
    std::vector<redis::request> reqs;
    std::vector<boost::system::result<redis::connection::response>> results;
    std::size_t left = 0;
    boost::asio::steady_timer done;
  };
  auto ex = co_await boost::asio::this_coro::executor;
  auto state = std::make_shared<out>(ex);
  state->reqs = std::move(reqs);
  state->results.resize(state->reqs.size(), redis::connection::response());
  state->left = state->reqs.size();
  for (std::size_t k = 0; k < state->reqs.size(); ++k)
    boost::asio::co_spawn(
        ex,
        [state, k, &conn, opts]() -> boost::asio::awaitable<void> {
          state->results[k] = co_await conn.exec(state->reqs[k], opts);
        },
        [state](const std::exception_ptr&) {
          if (--state->left == 0) state->done.cancel();
        });
  while (state->left > 0)
    co_await state->done.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  std::vector<redis::reply> replies;
  std::vector<bool> answered;
  std::size_t failed = 0;
  std::optional<error> first_failure;
  for (std::size_t k = 0; k < state->reqs.size(); ++k) {
    auto& r = state->results[k];
    const auto n = state->reqs[k].commands();
    if (!r || r->size() != n) {
      // Those queues' counts wait for the next flush; the others' are in.
      if (!first_failure) first_failure = r ? error(errc::redis_protocol) : error(r.error());
      failed += n;
      replies.resize(replies.size() + n);
      answered.resize(answered.size() + n, false);
      continue;
    }
    for (auto& one : *r) {
      replies.push_back(std::move(one));
      answered.push_back(true);
    }
  }
  if (failed == deltas.size() && first_failure) co_return *first_failure;
  for (std::size_t i = 0; i < deltas.size() && i < replies.size(); ++i) {
    const auto& reply = replies[i];
    if (!answered[i]) continue; // its request failed
    if (!reply.is_error()) {
      added[i] = true;
      continue;
    }
    if (!reply.str().starts_with("NOSCRIPT")) continue; // refused (OOM, READONLY): next time
    // The server lost its scripts (restarted, SCRIPT FLUSH): loaded and called again.
    std::vector<std::string_view> key(1, hashes[i]);
    std::vector<std::string_view> argv(args[i].begin(), args[i].end());
    auto again = co_await redis::eval(conn, script, key, argv, opts);
    added[i] = again && !again->is_error();
  }
  co_return added;
}

std::vector<minute_figures> read(const redis::reply& all, std::int64_t now_minute, int n) {
  n = std::clamp(n, 1, kept_minutes);
  const auto first = now_minute - n + 1;
  std::vector<minute_figures> out(static_cast<std::size_t>(n));
  std::vector<buckets> pickup(out.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i].at_ms = (first + static_cast<std::int64_t>(i)) * 60000;
  if (all.is_array()) {
    const auto& kv = all.elements();
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
      const auto field = kv[i].str();
      const auto colon = field.find(':');
      if (colon == std::string_view::npos) continue; // `trimmed`
      std::int64_t m = 0;
      std::uint64_t v = 0;
      if (std::from_chars(field.data(), field.data() + colon, m).ec != std::errc{}) continue;
      const auto text = kv[i + 1].str();
      if (std::from_chars(text.data(), text.data() + text.size(), v).ec != std::errc{}) continue;
      if (m < first || m > now_minute) continue;
      const auto at = static_cast<std::size_t>(m - first);
      const auto figure = field.substr(colon + 1);
      if (figure == "d") {
        out[at].done += v;
      } else if (figure == "f") {
        out[at].failed += v;
      } else if (figure.size() > 1 && figure[0] == 'l') {
        std::size_t b = 0;
        auto [end, ec] = std::from_chars(figure.data() + 1, figure.data() + figure.size(), b);
        if (ec == std::errc{} && end == figure.data() + figure.size() && b < bucket_count) {
          pickup[at][b] += v;
          out[at].started += v;
        }
      }
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].pickup_p50_ms = quantile_ms(pickup[i], 0.5);
    out[i].pickup_p99_ms = quantile_ms(pickup[i], 0.99);
  }
  return out;
}

} // namespace forq::queue::history
