// The conformance vectors (src/protocol/vectors.json) against the C++ producer, the first of the
// three implementations that must pass them (clients/node and clients/python run the same file):
// each vector's job is refused in exactly the vector's words, or enqueued on a real redis-server
// where it leaves exactly the vector's keys and fields.
#include "forq/names.hpp"
#include "forq/queue/limits.hpp"
#include "forq/queue/producer.hpp"
#include "forq/queue/retry.hpp"
#include "queue/protocol.hpp"
#include "support/async_test.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <variant>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace forq;
using namespace asio::experimental::awaitable_operators;

json::object read_json(const char* path) {
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  return json::parse(text.str()).as_object();
}

json::array vectors() {
  return read_json(FORQ_SOURCE_DIR "/src/protocol/vectors.json").at("enqueue").as_array();
}

// A vector's job as a C++ caller hands it over: what the CLI and the API check before the
// producer (a retry policy's text, a delay's bounds), then the queue::new_job; or the words of
// the first refusal.
std::variant<queue::new_job, std::string> to_job(const json::object& job) {
  queue::new_job j;
  if (auto* h = job.if_contains("handler")) j.handler = h->as_string();
  j.payload = json::serialize(job.contains("payload") ? job.at("payload") : json::value());
  if (auto* id = job.if_contains("id")) j.id = std::string(id->as_string());
  if (auto* p = job.if_contains("priority")) j.priority = static_cast<int>(p->as_int64());
  if (auto* a = job.if_contains("attempts")) j.max_attempts = static_cast<int>(a->as_int64());
  if (auto* w = job.if_contains("waitable")) j.waitable = w->as_bool();
  if (auto* r = job.if_contains("retry")) {
    const std::string text(r->as_string());
    auto parsed = queue::parse_retry(text);
    if (!parsed) return "retry \"" + text + "\": " + parsed.error().message();
    j.retry = *parsed;
  }
  if (auto* d = job.if_contains("delay_ms")) {
    if (auto ok = queue::check_bounds(queue::delay_bounds, d->as_int64()); !ok)
      return "delay_ms " + ok.error().message();
    if (d->as_int64() > 0) j.run_at_ms = queue::epoch_ms() + d->as_int64();
  }
  return j;
}

std::vector<std::string> strings(const json::array& a) {
  std::vector<std::string> out;
  for (const auto& v : a)
    out.emplace_back(v.as_string());
  return out;
}

std::vector<std::string> strings(const redis::reply& r) {
  std::vector<std::string> out;
  for (const auto& e : r.elements())
    out.emplace_back(e.str());
  return out;
}

// protocol.json, what the clients read their facts from, says what the C++ code does.
TEST(protocol_json, its_schema_keys_and_limits_are_the_cpp_codes) {
  const auto p = read_json(FORQ_SOURCE_DIR "/src/protocol/protocol.json");
  EXPECT_EQ(p.at("schema").as_int64(), queue::schema_version);
  EXPECT_EQ(p.at("group").as_string(), queue::keys::group);
  const queue::keys k("q");
  const std::pair<const char*, std::string> names[] = {
      {"meta", k.meta},
      {"stream", k.stream},
      {"delayed", k.delayed},
      {"delayed_jobs", k.delayed_jobs},
      {"wake", k.wake},
      {"dead", k.dead},
      {"dead_jobs", k.dead_jobs},
      {"results", k.results},
      {"results_data", k.results_data},
      {"progress", k.progress},
      {"entries", k.entries},
      {"cancel", k.cancel},
      {"cancelled", k.cancelled},
      {"cancelled_jobs", k.cancelled_jobs},
      {"finished", k.finished},
      {"events", k.events},
      {"stats", k.stats},
      {"schedules", k.schedules},
      {"stream_priority", k.stream_for(7)},
      {"unique", queue::keys::unique_key("q", "an:id")},
      {"queue_registry", std::string(queue::keys::all_queues)}};
  const auto& keys = p.at("keys").as_object();
  EXPECT_EQ(keys.size(), std::size(names));
  for (const auto& [name, want] : names) {
    std::string text(keys.at(name).as_string());
    for (auto [from, to] : {std::pair<std::string, std::string>{"<queue>", "q"},
                            {"<priority>", "7"},
                            {"<id>", "an:id"}})
      if (auto at = text.find(from); at != std::string::npos) text.replace(at, from.size(), to);
    EXPECT_EQ(text, want) << name;
  }
  const auto& l = p.at("limits").as_object();
  auto range = [&](const char* name) {
    const auto& a = l.at(name).as_array();
    return std::pair<long long, long long>{a[0].as_int64(), a[1].as_int64()};
  };
  EXPECT_EQ(range("priority"), (std::pair{queue::priority_bounds.lo, queue::priority_bounds.hi}));
  EXPECT_EQ(range("max_attempts"),
            (std::pair{queue::attempts_bounds.lo, queue::attempts_bounds.hi}));
  EXPECT_EQ(range("delay_ms"), (std::pair{queue::delay_bounds.lo, queue::delay_bounds.hi}));
  EXPECT_EQ(range("backoff_ms"), (std::pair{queue::backoff_bounds.lo, queue::backoff_bounds.hi}));
  EXPECT_EQ(l.at("payload_bytes").as_int64(),
            static_cast<std::int64_t>(queue::default_max_payload));
}

class protocol_vectors : public test::redis_test {};

TEST_F(protocol_vectors, the_cpp_producer_passes_every_vector) {
  const auto all = vectors();
  ASSERT_GT(all.size(), 30u);
  std::size_t refused = 0, enqueued = 0;
  test::run_async([&]() -> asio::awaitable<void> {
    redis::connection_options o;
    o.endpoint.host = "127.0.0.1";
    o.endpoint.port = redis_.port();
    redis::connection conn(co_await asio::this_coro::executor, o);
    auto body = [&]() -> asio::awaitable<void> {
      for (const auto& vv : all) {
        const auto& v = vv.as_object();
        const std::string name(v.at("name").as_string());
        const std::string queue(v.at("queue").as_string());
        auto job = to_job(v.at("job").as_object());
        if (v.contains("error")) {
          std::string words;
          if (auto* w = std::get_if<std::string>(&job)) {
            words = *w;
          } else {
            auto r = co_await queue::enqueue(conn, queue, std::get<queue::new_job>(job));
            EXPECT_FALSE(r) << name;
            if (!r) words = r.error().message();
          }
          EXPECT_EQ(words, v.at("error").as_string()) << name;
          ++refused;
          continue;
        }
        if (!std::holds_alternative<queue::new_job>(job)) {
          ADD_FAILURE() << name << ": refused: " << std::get<std::string>(job);
          continue;
        }
        auto r = co_await queue::enqueue(conn, queue, std::get<queue::new_job>(job));
        if (!r) {
          ADD_FAILURE() << name << ": " << r.error().message();
          continue;
        }
        ++enqueued;
        const auto& call = v.at("call").as_object();
        const std::string kind(call.at("kind").as_string());
        if (kind == "xadd") {
          const std::string key(call.at("key").as_string());
          auto last = co_await conn.command("XREVRANGE", key, "+", "-", "COUNT", "1");
          EXPECT_TRUE(last && last->elements().size() == 1) << name;
          if (!last || last->elements().size() != 1) continue;
          const auto& entry = last->elements()[0].elements();
          EXPECT_EQ(strings(entry[1]), strings(call.at("fields").as_array())) << name;
          EXPECT_EQ(r->id,
                    std::string(entry[0].str()) + std::string(call.at("id_suffix").as_string()))
              << name;
        } else if (kind == "unique") {
          const auto keys = strings(call.at("keys").as_array());
          const auto args = strings(call.at("args").as_array());
          auto marker = co_await conn.command("GET", keys[0]);
          EXPECT_TRUE(marker && marker->is_string()) << name;
          if (!marker || !marker->is_string()) continue;
          const std::string entry_id(marker->str());
          auto entry = co_await conn.command("XRANGE", keys[1], entry_id, entry_id);
          EXPECT_TRUE(entry && entry->elements().size() == 1) << name;
          if (!entry || entry->elements().size() != 1) continue;
          // The entry: the caller's id first, then the fields (ARGV after id and ttl).
          std::vector<std::string> want{"id", args[0]};
          want.insert(want.end(), args.begin() + 2, args.end());
          EXPECT_EQ(strings(entry->elements()[0].elements()[1]), want) << name;
          EXPECT_EQ(r->id, args[0]) << name;
          auto ttl = co_await conn.command("TTL", keys[0]);
          EXPECT_NEAR(static_cast<double>(ttl->as_integer().value_or(0)), std::stod(args[1]), 5)
              << name;
        } else { // delayed
          const auto keys = strings(call.at("keys").as_array());
          auto rec = co_await conn.command("HGET", keys[1], r->id);
          EXPECT_TRUE(rec && rec->is_string()) << name;
          if (!rec || !rec->is_string()) continue;
          auto stored = json::parse(rec->str()).as_object();
          EXPECT_EQ(stored["id"], json::value(r->id)) << name;
          EXPECT_EQ(stored["attempt"], json::value("0")) << name;
          stored.erase("id");
          stored.erase("attempt");
          EXPECT_EQ(json::value(stored), call.at("record")) << name;
          const std::string want_id(call.at("id").as_string());
          if (!want_id.empty()) {
            EXPECT_EQ(r->id, want_id) << name;
            auto marker = co_await conn.command("EXISTS", keys[4]);
            EXPECT_EQ(marker->as_integer().value_or(0), 1) << name;
          }
          auto at = co_await conn.command("ZSCORE", keys[0], r->id);
          const auto delay = v.at("job").as_object().at("delay_ms").as_int64();
          EXPECT_NEAR(std::stod(std::string(at->str())),
                      static_cast<double>(queue::epoch_ms() + delay), 5000)
              << name;
        }
      }
      conn.stop();
    };
    co_await (conn.run() && body());
  });
  EXPECT_GT(refused, 20u);
  EXPECT_GT(enqueued, 10u);
}

} // namespace
