// The producer side of the queue protocol against a real redis-server: what docs/protocol.md
// promises a producer, checked with plain Redis commands as a foreign producer would see it.
#include "forq/queue/producer.hpp"
#include "queue/protocol.hpp"
#include "support/async_test.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

namespace {

namespace asio = boost::asio;
using namespace forq;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using forq::test::redis_test;

class queue_test : public redis_test {
 protected:
  void with_connection(std::function<asio::awaitable<void>(redis::connection&)> body) {
    test::run_async([&]() -> asio::awaitable<void> {
      redis::connection_options o;
      o.endpoint.host = "127.0.0.1";
      o.endpoint.port = redis_.port();
      redis::connection conn(co_await asio::this_coro::executor, o);
      auto run_body = [&]() -> asio::awaitable<void> {
        co_await body(conn);
        conn.stop();
      };
      co_await (conn.run() && run_body());
    });
  }
};

TEST_F(queue_test, init_writes_the_schema_and_the_group_and_is_idempotent) {
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    EXPECT_FALSE(co_await queue::init_queue(conn, "emails"));
    EXPECT_FALSE(co_await queue::init_queue(conn, "emails")); // a second start: nothing changes
  });
  EXPECT_EQ(redis_.command({"HGET", "forq:{emails}:meta", "schema"}),
            std::to_string(queue::schema_version));
  EXPECT_EQ(redis_.command({"SMEMBERS", "forq:queues"}), "[emails]");
  EXPECT_NE(redis_.command({"XINFO", "GROUPS", "forq:{emails}:stream"}).find("workers"),
            std::string::npos);
}

TEST_F(queue_test, an_incompatible_schema_is_refused) {
  redis_.command({"HSET", "forq:{old}:meta", "schema", "99"});
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    EXPECT_EQ(co_await queue::init_queue(conn, "old"), errc::queue_schema_mismatch);
  });
  EXPECT_EQ(redis_.command({"HGET", "forq:{old}:meta", "schema"}), "99"); // left untouched
}

TEST_F(queue_test, enqueue_adds_one_stream_entry_whose_id_is_the_job_id) {
  std::string id;
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    queue::new_job j;
    j.handler = "send_email";
    j.payload = R"({"to":"a@example.com"})";
    auto r = co_await queue::enqueue(conn, "emails", j);
    FORQ_CO_ASSERT(r);
    EXPECT_FALSE(r->duplicate);
    id = r->id;
  });
  EXPECT_EQ(redis_.command({"XRANGE", "forq:{emails}:stream", id, id}),
            "[[" + id + ", [handler, send_email, payload, {\"to\":\"a@example.com\"}]]]");
}

TEST_F(queue_test, a_caller_given_id_is_enqueued_once) {
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    queue::new_job j;
    j.handler = "charge";
    j.payload = R"({"order":42})";
    j.id = "order-42";
    auto first = co_await queue::enqueue(conn, "billing", j);
    auto again = co_await queue::enqueue(conn, "billing", j);
    FORQ_CO_ASSERT(first && again);
    EXPECT_EQ(first->id, "order-42");
    EXPECT_FALSE(first->duplicate);
    EXPECT_TRUE(again->duplicate);
  });
  EXPECT_EQ(redis_.command({"XLEN", "forq:{billing}:stream"}), "1");
  auto entry = redis_.command({"XRANGE", "forq:{billing}:stream", "-", "+"});
  EXPECT_NE(entry.find("[id, order-42, handler, charge"), std::string::npos) << entry;
}

TEST_F(queue_test, priorities_go_to_their_own_streams) {
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    queue::new_job j;
    j.handler = "noop";
    j.priority = 7;
    j.max_attempts = 3;
    EXPECT_TRUE(co_await queue::enqueue(conn, "q", j));
  });
  EXPECT_EQ(redis_.command({"XLEN", "forq:{q}:stream:p7"}), "1");
  EXPECT_NE(redis_.command({"XRANGE", "forq:{q}:stream:p7", "-", "+"}).find("max_attempts, 3"),
            std::string::npos);
}

struct bad_job {
  std::string queue;
  queue::new_job job;
  std::string says;
};

TEST_F(queue_test, bad_jobs_are_refused_before_redis_with_the_reason) {
  std::vector<bad_job> bad;
  auto make = [](std::string handler, std::string payload) {
    queue::new_job j;
    j.handler = std::move(handler);
    j.payload = std::move(payload);
    return j;
  };
  bad.push_back({"q", make("noop", "{not json"), "payload is not JSON"});
  bad.push_back({"q", make("has space", "{}"), "handler \"has space\" is not allowed"});
  bad.push_back({"q", make("noop", std::string(queue::default_max_payload + 1, ' ')),
                 "the limit is 1048576"});
  bad.push_back({"bad{tag}", make("noop", "{}"), "queue name \"bad{tag}\" is not allowed"});
  auto prio = make("noop", "{}");
  prio.priority = 10;
  bad.push_back({"q", prio, "priority 10 is not allowed"});
  auto attempts = make("noop", "{}");
  attempts.max_attempts = 0;
  bad.push_back({"q", attempts, "attempts 0 is not allowed"});
  with_connection([&](redis::connection& conn) -> asio::awaitable<void> {
    for (const auto& b : bad) {
      auto r = co_await queue::enqueue(conn, b.queue, b.job);
      EXPECT_FALSE(r) << b.says;
      if (r) continue;
      EXPECT_EQ(r.error(), errc::invalid_job) << b.says;
      auto why = r.error().message();
      EXPECT_NE(why.find(b.says), std::string::npos)
          << "expected \"" << b.says << "\", got " << why;
    }
  });
  EXPECT_EQ(redis_.command({"DBSIZE"}), "0"); // nothing reached Redis
}

} // namespace
