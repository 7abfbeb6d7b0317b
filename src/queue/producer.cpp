#include "forq/queue/producer.hpp"

#include "backoff.hpp"
#include "queue/job.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace forq::queue {

namespace {

using boost::system::error_code;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

} // namespace

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

keys::keys(std::string_view queue)
    : queue_(queue) {
  const std::string prefix = "forq:{" + queue_ + "}:";
  meta = prefix + "meta";
  stream = stream_key(queue_, 0);
  stats = prefix + "stats";
  delayed = prefix + "delayed";
  delayed_jobs = prefix + "delayed:jobs";
  dead = prefix + "dead";
  dead_jobs = prefix + "dead:jobs";
  results = prefix + "results";
  results_data = prefix + "results:data";
  wake = prefix + "wake";
  rate = prefix + "rate";
  priorities = prefix + "priorities";
  minutes = prefix + "minutes";
  entries = prefix + "entries";
  progress = prefix + "progress";
  cancel = prefix + "cancel";
  cancelled = prefix + "cancelled";
  cancelled_jobs = prefix + "cancelled:jobs";
  finished = prefix + "finished";
  events = prefix + "events";
  schedules = prefix + "schedules";
  schedule_state = prefix + "schedule_state";
  schedule_due = prefix + "schedule_due";
}

std::string keys::stream_key(std::string_view queue, int priority) {
  std::string k = "forq:{" + std::string(queue) + "}:stream";
  return priority == 0 ? k : k + ":p" + std::to_string(priority);
}

std::string keys::unique_key(std::string_view queue, std::string_view caller_id) {
  return "forq:{" + std::string(queue) + "}:unique:" + std::string(caller_id);
}

std::string keys::named(std::string_view queue, std::string_view name) {
  return "forq:{" + std::string(queue) + "}:" + std::string(name);
}

namespace {

// What this thread's producers last read of each queue's events setting, per connection: a few
// entries (the queues a process enqueues to), searched in order.
struct events_seen {
  const void* conn = nullptr;
  std::string queue;
  bool on = false;
  std::chrono::steady_clock::time_point at;
};
thread_local std::vector<events_seen> seen_events;

events_seen* find_seen(const void* conn, std::string_view queue) {
  for (auto& s : seen_events)
    if (s.conn == conn && s.queue == queue) return &s;
  return nullptr;
}

} // namespace

std::optional<bool> events_known(const redis::connection& conn, std::string_view queue) {
  const auto* s = find_seen(&conn, queue);
  if (s && std::chrono::steady_clock::now() - s->at < std::chrono::seconds(1)) return s->on;
  return std::nullopt;
}

boost::asio::awaitable<bool> events_on(redis::connection& conn, std::string_view queue,
                                       redis::exec_options opts) {
  if (auto known = events_known(conn, queue)) co_return *known;
  redis::request req("HGET", keys::named(queue, "meta"), "events");
  auto r = redis::connection::single(co_await conn.exec(req, opts));
  // Not known (Redis away): off; the enqueue that follows says what is wrong.
  const bool on = r && !r->is_error() && r->as_integer().value_or(0) > 0;
  auto* s = find_seen(&conn, queue);
  if (!s) {
    if (seen_events.size() >= 256) seen_events.clear(); // connections come and go: bounded
    s = &seen_events.emplace_back(events_seen{&conn, std::string(queue), on, {}});
  }
  s->on = on;
  s->at = std::chrono::steady_clock::now();
  co_return on;
}

std::string keys::stream_for(int priority) const {
  return stream_key(queue_, priority);
}

std::vector<std::string> keys::streams() const {
  std::vector<std::string> all;
  all.reserve(10);
  for (int p = 0; p <= 9; ++p)
    all.push_back(stream_for(p));
  return all;
}

namespace {

// A C0 control (below 0x20), DEL, or a C1 control (U+0080 to U+009F, which some terminals take
// as escapes) in UTF-8 text.
static bool has_control(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return true;
  }
  return false;
}

std::optional<std::string> why_refused(const new_job& j, std::size_t max_payload) {
  // No handler: the job runs its queue's default handler (the workers' --queues Q=HANDLER).
  if (j.handler.size() > 128 || !std::all_of(j.handler.begin(), j.handler.end(), name_char))
    return "handler \"" + j.handler +
           "\" is not allowed: use 1 to 128 characters of A-Z a-z 0-9 _ . : -";
  if (j.payload.size() > max_payload)
    return "payload is " + std::to_string(j.payload.size()) + " bytes; the limit is " +
           std::to_string(max_payload);
  if (auto bad = check_json(j.payload)) return "payload is not JSON: " + bad.message();
  if (j.id && (j.id->empty() || j.id->size() > 256)) return "id must be 1 to 256 bytes";
  if (j.id && !is_utf8(*j.id)) return "id must be UTF-8 text";
  if (j.id && has_control(*j.id))
    return std::string("id must not hold control characters (newline, tab, NUL, escape, ...): "
                       "it is printed in lines, logs and terminals");
  if (j.id && looks_generated(*j.id))
    return "id \"" + *j.id +
           "\" has the shape of an id forq generates (<ms>-<n>, <ms>-<n>-p<N>, <ms>-d<n>), so it "
           "could name another job: choose another";
  if (auto ok = check_bounds(priority_bounds, j.priority); !ok)
    return "priority " + ok.error().message();
  if (j.retry) {
    if (auto ok = check_retry(*j.retry); !ok) return ok.error().message();
    if (j.retry->empty()) return std::string("retry is empty: leave it out for the queue's policy");
  }
  if (j.max_attempts)
    if (auto ok = check_bounds(attempts_bounds, *j.max_attempts); !ok)
      return "attempts " + ok.error().message(); // (the CLI, API and clients name it so)
  if (j.run_at_ms && *j.run_at_ms > epoch_ms() + delay_bounds.hi) // (no overflow either way)
    return "run_at_ms " + std::to_string(*j.run_at_ms) +
           " is more than a year from now: a job may wait at most " +
           std::to_string(delay_bounds.hi) + " ms";
  return std::nullopt;
}

} // namespace

expected<> check_job(const new_job& j, std::size_t max_payload) {
  if (auto why = why_refused(j, max_payload)) return error(errc::invalid_job, std::move(*why));
  return {};
}

std::vector<std::string_view> job_fields(const new_job& j, std::string& storage) {
  // (Built with push_back: callers are coroutines, and GCC 12 miscompiles braced lists there.)
  std::vector<std::string_view> fields;
  if (!j.handler.empty()) {
    fields.push_back("handler");
    fields.push_back(j.handler);
  }
  fields.push_back("payload");
  fields.push_back(j.payload);
  // Both numbers' text in `storage`, written before any view into it is taken.
  const auto attempts = j.max_attempts ? std::to_string(*j.max_attempts) : std::string();
  storage = attempts + (j.retry ? to_string(*j.retry) : std::string());
  const std::string_view all(storage);
  if (j.max_attempts) {
    fields.push_back("max_attempts");
    fields.push_back(all.substr(0, attempts.size()));
  }
  if (j.retry) {
    fields.push_back("retry");
    fields.push_back(all.substr(attempts.size()));
  }
  if (j.waitable) {
    fields.push_back("waitable");
    fields.push_back("1");
  }
  return fields;
}

void push_xadd(redis::request& req, std::string_view queue, const new_job& j) {
  auto stream = keys::stream_key(queue, j.priority);
  std::string storage;
  auto fields = job_fields(j, storage);
  std::vector<std::string_view> args;
  args.push_back(stream);
  args.push_back("*");
  args.insert(args.end(), fields.begin(), fields.end());
  req.push_range("XADD", args); // copies the arguments into the request
}

added_call::added_call(std::string_view queue, const new_job& j)
    : stream(keys::stream_key(queue, j.priority))
    , meta(keys::named(queue, "meta"))
    , events(keys::named(queue, "events"))
    , priority(std::to_string(j.priority))
    , keys_v{stream, meta, events}
    , args{priority} {
  auto fields = job_fields(j, storage);
  args.insert(args.end(), fields.begin(), fields.end());
}

void push_added(redis::request& req, std::string_view queue, const new_job& j) {
  const added_call call(queue, j);
  std::vector<std::string_view> argv{detail::scripts().added.sha1(), "3"};
  argv.insert(argv.end(), call.keys_v.begin(), call.keys_v.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  req.push_range("EVALSHA", argv);
}

void push_wait(redis::request& req, const redis::durability& d) {
  req.push("WAIT", std::to_string(d.replicas), std::to_string(d.timeout.count()));
}

std::optional<std::string> short_of_replicas(const redis::reply& wait_reply,
                                             const redis::durability& d, std::string_view what) {
  auto got = wait_reply.as_integer();
  if (got && *got >= d.replicas) return std::nullopt;
  return std::string(what) + " on the primary, but " + (got ? std::to_string(*got) : "no") +
         " of the " + std::to_string(d.replicas) +
         " replica(s) redis.durability asks for acknowledged the write within " +
         std::to_string(d.timeout.count()) + " ms" +
         (wait_reply.is_error() ? " (WAIT: " + std::string(wait_reply.str()) + ")" : "") +
         "; it may be lost if the primary fails now";
}

namespace {

// redis.durability = replicated:N: WAIT after a write, on the same connection (so it covers
// it); fewer replicas than N in time is redis_not_confirmed, with the job's id in the message.
boost::asio::awaitable<expected<>> confirm(redis::connection& conn, std::string_view queue,
                                           std::string_view id, redis::exec_options opts) {
  const auto& d = conn.options().durability;
  if (d.replicas <= 0) co_return expected<>();
  // Cluster: the WAIT goes to the node the queue's write went to (redis/cluster.hpp).
  const auto route = keys::stream_key(queue, 0);
  opts.route = route;
  redis::request wait;
  push_wait(wait, d);
  opts.extra_timeout = d.timeout;
  auto r = co_await conn.exec(wait, opts);
  if (!r) co_return r.error();
  if (auto short_by = short_of_replicas(r->front(), d, "job " + std::string(id) + " is"))
    co_return error(errc::redis_not_confirmed, std::move(*short_by));
  co_return expected<>();
}

} // namespace

boost::asio::awaitable<expected<enqueue_result>> enqueue(redis::connection& conn,
                                                         std::string_view queue, const new_job& j,
                                                         redis::exec_options opts) {
  if (auto name = check_queue_name(queue); !name)
    co_return error(errc::invalid_job, name.error().message());
  if (auto ok = check_job(j); !ok) co_return ok.error();
  // Only the keys this needs: enqueue is every producer's hot path.
  auto stream = keys::stream_key(queue, j.priority);
  std::string attempts;
  auto fields = job_fields(j, attempts);

  if (j.run_at_ms && *j.run_at_ms > epoch_ms()) { // later: the delayed set, by script
    boost::json::object record;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
      record[fields[i]] = fields[i + 1];
    if (j.priority != 0) record["priority"] = std::to_string(j.priority);
    auto json = boost::json::serialize(record);
    keys k(queue);
    auto at = std::to_string(*j.run_at_ms);
    auto marker = keys::unique_key(queue, j.id.value_or(""));
    std::string ttl = "604800";
    std::vector<std::string_view> keys_v, args;
    keys_v.push_back(k.delayed);
    keys_v.push_back(k.delayed_jobs);
    keys_v.push_back(k.stats);
    keys_v.push_back(k.wake);
    if (j.id) keys_v.push_back(marker);
    keys_v.push_back(k.meta); // an `added` event when the queue's events are on
    keys_v.push_back(k.events);
    args.push_back(at);
    args.push_back(j.id ? std::string_view(*j.id) : std::string_view());
    args.push_back(ttl);
    args.push_back(json);
    auto r = co_await redis::eval(conn, detail::scripts().enqueue_delayed, keys_v, args, opts);
    if (!r) co_return r.error();
    if (r->is_error()) co_return write_error(*r);
    if (r->elements().size() != 2) co_return error(errc::redis_protocol, r->to_string());
    enqueue_result done{std::string(r->elements()[1].str()), r->elements()[0].str() == "duplicate"};
    if (auto ok = co_await confirm(conn, queue, done.id, opts); !ok) co_return ok.error();
    co_return done;
  }

  if (!j.id) { // the common case: one XADD, the entry id is the job id
    boost::system::result<redis::reply> r;
    auto events = events_known(conn, queue); // (a coroutine's frame only when it must look)
    if (!events) events = co_await events_on(conn, queue, opts); // (no co_await in a ?:)
    if (*events) {
      const added_call call(queue, j); // the XADD and the job's `added` event
      r = co_await redis::eval(conn, detail::scripts().added, call.keys_v, call.args, opts);
    } else {
      redis::request xadd;
      push_xadd(xadd, queue, j);
      r = redis::connection::single(co_await conn.exec(xadd, opts));
    }
    if (!r) co_return r.error();
    if (r->is_error()) co_return write_error(*r);
    enqueue_result done{first_attempt_id(r->str(), j.priority), false};
    if (auto ok = co_await confirm(conn, queue, done.id, opts); !ok) co_return ok.error();
    co_return done;
  }

  auto unique_key = keys::unique_key(queue, *j.id);
  std::string ttl = "604800"; // a week: the dedupe window until result retention is configurable
  std::vector<std::string_view> keys_v, args;
  const auto meta = keys::named(queue, "meta"), events = keys::named(queue, "events");
  keys_v.push_back(unique_key);
  keys_v.push_back(stream);
  keys_v.push_back(meta); // an `added` event when the queue's events are on
  keys_v.push_back(events);
  args.push_back(*j.id);
  args.push_back(ttl);
  args.insert(args.end(), fields.begin(), fields.end());
  auto r = co_await redis::eval(conn, detail::scripts().enqueue_unique, keys_v, args, opts);
  if (!r) co_return r.error();
  if (r->is_error()) co_return write_error(*r);
  if (r->elements().size() != 2) co_return error(errc::redis_protocol, r->to_string());
  enqueue_result done{*j.id, r->elements()[0].str() == "duplicate"};
  if (auto ok = co_await confirm(conn, queue, done.id, opts); !ok) co_return ok.error();
  co_return done;
}

error write_error(const redis::reply& r) {
  std::string words(r.str());
  if (r.is_write_refused()) return error(errc::redis_refuses_writes, std::move(words));
  if (r.is_retry_later()) return error(errc::redis_retry_later, std::move(words));
  return error(errc::redis_refused, std::move(words));
}

boost::asio::awaitable<error_code> init_queue(redis::connection& conn, std::string_view queue,
                                              queue_init* what) {
  if (!check_queue_name(queue)) co_return error_code(errc::invalid_job);
  keys k(queue);
  const std::string version = std::to_string(schema_version);
  const std::string older = std::to_string(upgrades_from_schema);
  std::vector<std::string> key_storage;
  key_storage.push_back(k.meta);
  for (auto& s : k.streams())
    key_storage.push_back(std::move(s));
  key_storage.push_back(k.wake);
  std::vector<std::string_view> keys_v(key_storage.begin(), key_storage.end()), args;
  args.push_back(version);
  args.push_back(keys::group);
  args.push_back(older);
  auto r = co_await redis::eval(conn, detail::scripts().init_queue, keys_v, args);
  if (!r) co_return r.error();
  if (r->is_error()) {
    auto e = write_error(*r);
    if (e == errc::redis_refused)
      spdlog::error("starting queue {}: Redis answered {}", queue, e.message());
    co_return e.code();
  }
  const auto& v = r->elements();
  if (v.size() != 4) co_return error_code(errc::redis_protocol);
  if (v[0].str() != version) {
    spdlog::critical("queue {} was written with protocol schema {}; this forq speaks {} (and "
                     "upgrades {} in place): run workers of one release on a queue",
                     queue, v[0].str(), version, older);
    co_return error_code(errc::queue_schema_mismatch);
  }
  queue_init done;
  done.schema_written = v[1].as_integer().value_or(0) == 1;
  done.groups_created = static_cast<int>(v[2].as_integer().value_or(0));
  done.upgraded_from = static_cast<int>(v[3].as_integer().value_or(0));
  if (done.upgraded_from)
    spdlog::warn("queue {}: protocol schema {} upgraded to {} (a first attempt's job id now "
                 "carries its priority: <entry id>-p<N>); workers of older releases refuse this "
                 "queue from now on",
                 queue, done.upgraded_from, schema_version);
  if (what) *what = done;
  // The registry lives in another cluster slot: a command of its own, never in the script.
  auto reg = co_await conn.command("SADD", keys::all_queues, queue);
  if (!reg) co_return reg.error();
  if (reg->is_error()) co_return write_error(*reg).code();
  co_return error_code{};
}

boost::asio::awaitable<error_code> restore_queue(redis::connection& conn, std::string_view queue) {
  queue_init done;
  auto ec = co_await init_queue(conn, queue, &done);
  if (!ec && done.schema_written)
    spdlog::warn("queue {}: its keys are gone from Redis (restarted without persistence? "
                 "flushed? failed over to an empty replica?); initialised again; jobs that were "
                 "in Redis are lost with it",
                 queue);
  else if (!ec && done.groups_created > 0)
    spdlog::warn("queue {}: the consumer group of {} of its streams was gone from Redis; created "
                 "again (entries added since are delivered)",
                 queue, done.groups_created);
  co_return ec;
}

boost::asio::awaitable<error_code> start_queue(redis::connection& conn, std::string_view queue) {
  forq::backoff waits({std::chrono::milliseconds(100), std::chrono::milliseconds(5000)});
  for (int attempt = 1;; ++attempt) {
    auto ec = co_await init_queue(conn, queue);
    if (!ec || ec == errc::queue_schema_mismatch || ec == errc::invalid_job ||
        ec == errc::redis_refused || ec == errc::redis_shutdown || ec == errc::redis_auth_failed)
      co_return ec;
    const auto delay = waits.next();
    // Said once a second at most while it lasts, not once per try.
    if (attempt == 1 || delay >= std::chrono::milliseconds(1000))
      spdlog::warn("starting queue {}: Redis cannot take it yet ({}); trying again in {} ms "
                   "(attempt {})",
                   queue, ec.message(), delay.count(), attempt);
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, delay);
    co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

} // namespace forq::queue
