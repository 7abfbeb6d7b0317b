// A handler can be tested without Redis or a worker: forq::context is an interface, so a test
// gives the handler a context of its own. Here: what a handler does through it (progress,
// enqueue, the attempt number), and the cancellation contract of an attempt bound to a
// cancellation slot (what forq does on a queue with an attempt_timeout): the built-in `sleep`
// ends at once, cancelled.
#include "forq/forq.hpp"
#include "forq/handlers.hpp"
#include "support/async_test.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A context that records what the handler asks of it. until_cancelled() keeps its contract:
// it completes when cancel() is called (or when its own wait is cancelled).
class recording_context final : public forq::context {
 public:
  explicit recording_context(int attempt) { attempt_ = attempt; }
  asio::awaitable<void> until_cancelled() override {
    asio::steady_timer bell(co_await asio::this_coro::executor,
                            asio::steady_timer::time_point::max());
    bell_ = &bell;
    auto [ec] = co_await bell.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec; // told, or this wait itself was cancelled: either way, done
    bell_ = nullptr;
  }
  forq::expected<> progress(std::string_view json) override {
    reports.emplace_back(json);
    return {};
  }
  asio::awaitable<forq::expected<forq::queue::enqueue_result>>
  enqueue(std::string_view queue, const forq::queue::new_job& j) override {
    enqueued.push_back(std::string(queue) + "/" + j.handler);
    co_return forq::queue::enqueue_result{"child-1", false};
  }
  void cancel(std::string why) {
    cancel_reason_ = std::move(why);
    if (bell_) bell_->cancel();
  }

  std::vector<std::string> reports, enqueued;

 private:
  asio::steady_timer* bell_ = nullptr;
};

TEST(handler_context, a_handler_reports_and_enqueues_through_the_context_it_is_given) {
  forq::handler h = [](const forq::job& j, forq::context& ctx) -> asio::awaitable<forq::result> {
    ctx.progress(R"({"step":"fetched"})");
    forq::queue::new_job next;
    next.handler = "parse";
    next.payload = j.payload;
    auto r = co_await ctx.enqueue("parse", next);
    if (!r) co_return forq::result::retry_later(r.error().message());
    co_return forq::result::success("{\"attempt\":" + std::to_string(ctx.attempt()) +
                                    ",\"child\":\"" + r->id + "\"}");
  };
  recording_context ctx(2);
  forq::job j;
  j.payload = "{}";
  forq::result out;
  ASSERT_TRUE(
      forq::test::run_async([&]() -> asio::awaitable<void> { out = co_await h(j, ctx); }, 5s));
  EXPECT_EQ(out.what, forq::result::kind::done);
  EXPECT_EQ(out.text, R"({"attempt":2,"child":"child-1"})");
  EXPECT_EQ(ctx.reports, (std::vector<std::string>{R"({"step":"fetched"})"}));
  EXPECT_EQ(ctx.enqueued, (std::vector<std::string>{"parse/parse"}));
}

// The built-in sleep of 10 s, cancelled after 20 ms with `why`: bound to a cancellation slot as
// forq binds an attempt on a queue with a timeout (`bound`), or not (then only the context
// tells it). What it returned, and that it did so at once.
std::optional<forq::result> sleep_cancelled(bool bound, const std::string& why) {
  auto sleep = forq::handlers::builtins().at("sleep");
  recording_context ctx(1);
  forq::job j;
  j.payload = R"({"ms": 10000})";
  std::optional<forq::result> out;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(forq::test::run_async(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::cancellation_signal signal;
        auto done = [&](std::exception_ptr, forq::result r) { out = std::move(r); };
        if (bound)
          asio::co_spawn(ex, sleep(j, ctx), asio::bind_cancellation_slot(signal.slot(), done));
        else
          asio::co_spawn(ex, sleep(j, ctx), done);
        asio::steady_timer t(ex, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        ctx.cancel(why);
        if (bound) signal.emit(asio::cancellation_type::terminal);
        while (!out) {
          t.expires_after(1ms);
          co_await t.async_wait(asio::use_awaitable);
        }
      },
      5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "not the whole 10 s";
  return out;
}

TEST(handler_context, a_bound_attempt_s_awaits_end_at_once_when_it_is_cancelled) {
  auto out = sleep_cancelled(true, "timed out after 20 ms (the queue's timeout)");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->what, forq::result::kind::cancelled) << "cut short is not a success";
  EXPECT_EQ(out->text, "timed out after 20 ms (the queue's timeout)");
}

// Not bound (a queue without a timeout): the built-in sleep hears the cancel through
// until_cancelled() and ends at once, cancelled.
TEST(handler_context, an_unbound_sleep_hears_a_cancel_through_the_context) {
  auto out = sleep_cancelled(false, "cancelled by ops: no longer needed");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->what, forq::result::kind::cancelled);
  EXPECT_EQ(out->text, "cancelled by ops: no longer needed");
}

} // namespace
