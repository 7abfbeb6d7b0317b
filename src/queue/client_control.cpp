// forq::client's job control (forq/client.hpp, docs/job-control.md): cancel a job wherever it
// stands, and wait for a job's end.
#include "forq/client.hpp"
#include "forq/error.hpp"
#include "queue/client_detail.hpp"
#include "queue/job_lookup.hpp"
#include "queue/protocol.hpp"
#include "scripts.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace forq {

using namespace client_detail;

namespace {

bool terminal(const job_info& j) {
  return j.state == "completed" || j.state == "dead" || j.state == "cancelled";
}

// A ready job's record as cancelled:jobs keeps it: its fields as strings (the same shape
// dead:jobs has), read from its entry.
std::string record_of(const job_info& j) {
  json::object o;
  if (!j.handler.empty()) o["handler"] = j.handler;
  o["payload"] = j.payload;
  o["id"] = j.id;
  o["attempt"] = std::to_string(j.attempts);
  o["priority"] = std::to_string(j.priority.value_or(0));
  if (j.max_attempts) o["max_attempts"] = std::to_string(*j.max_attempts);
  if (j.retry) o["retry"] = *j.retry;
  if (j.last_error) o["last_error"] = *j.last_error;
  if (j.errors) o["errors"] = json::serialize(*j.errors);
  if (j.waitable) o["waitable"] = "1";
  for (const auto& [k, v] : j.other_fields)
    o[k] = v;
  return queue::serialize_utf8(o);
}

} // namespace

boost::asio::awaitable<result<std::optional<client::cancel_result>>>
client::cancel(std::string_view queue, std::string_view id, std::string_view by,
               std::string_view why) {
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  if (by.empty() || by.size() > 128 || !is_utf8(by))
    co_return error(errc::invalid_value, "who cancels: 1 to 128 bytes of UTF-8 text");
  if (why.size() > 1000 || !is_utf8(why))
    co_return error(errc::invalid_value, "the reason: at most 1,000 bytes of UTF-8 text");
  const queue::keys k(queue);
  // The job may move between the lookup and the script (a consumer fetches it, it ends): the
  // script says so, and the lookup is made again.
  for (int tries = 0; tries < 20; ++tries) {
    job_lookup lookup(conn_, opts_, queue, id);
    auto found = co_await lookup.run();
    if (!found) co_return found.error();
    if (!*found) co_return std::optional<cancel_result>();
    auto& job = **found;
    if (terminal(job)) co_return cancel_result{"terminal", std::move(job)};
    const bool delayed = job.state == "delayed";
    const auto now = std::to_string(queue::epoch_ms());
    // A ready job's record, for cancel.lua to keep if it removes the entry (a running one is
    // only marked, a delayed one keeps its own).
    const auto record = job.state == "ready" ? record_of(job) : std::string();
    std::vector<std::string_view> keys_v, args;
    keys_v.push_back(k.cancel);
    keys_v.push_back(k.cancelled);
    keys_v.push_back(k.cancelled_jobs);
    keys_v.push_back(k.stats);
    keys_v.push_back(k.finished);
    keys_v.push_back(k.delayed);
    keys_v.push_back(k.delayed_jobs);
    keys_v.push_back(k.entries);
    keys_v.push_back(delayed ? k.stream : lookup.stream());
    keys_v.push_back(k.meta);
    keys_v.push_back(k.events);
    args.push_back(group);
    args.push_back(id);
    args.push_back(now);
    args.push_back(by);
    args.push_back(why);
    args.push_back(delayed ? "delayed" : "entry");
    args.push_back(lookup.entry());
    args.push_back(record);
    args.push_back(job.waitable ? "1" : "0");
    auto r = co_await redis::eval(conn_, queue::detail::scripts().cancel, keys_v, args, opts_);
    if (!r) co_return r.error();
    if (r->is_error()) co_return queue::write_error(*r);
    const auto& e = r->elements();
    const auto what = e.empty() ? std::string_view() : e[0].str();
    if (what == "moved") continue;
    std::string outcome = what == "cancelled" ? "cancelled"
                          : e.size() > 1      ? "already_requested"
                                              : "requested";
    auto now_job = co_await get_job(queue, id);
    if (!now_job) co_return now_job.error();
    if (*now_job) job = std::move(**now_job);
    co_return cancel_result{std::move(outcome), std::move(job)};
  }
  co_return error(errc::redis_refused,
                  "the job kept moving while it was cancelled (20 tries); try again");
}

boost::asio::awaitable<result<std::optional<job_info>>>
client::wait(std::string_view queue, std::string_view id, std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  if (auto name = queue::check_queue_name(queue); !name) co_return name.error();
  const auto until = clock::now() + std::max(timeout, milliseconds(0));
  const queue::keys k(queue);
  // Where the finished stream stands before the job is looked at: an end announced after it
  // is news; one before it is seen by the look.
  std::string last = "0-0";
  {
    redis::request req("XREVRANGE", k.finished, "+", "-", "COUNT", "1");
    auto r = redis::connection::single(co_await exec(req));
    if (!r) co_return r.error();
    if (r->is_array() && !r->elements().empty() && r->elements()[0].is_array())
      last = r->elements()[0].elements()[0].str();
  }
  auto found = co_await get_job(queue, id);
  auto looked = clock::now();
  auto again = milliseconds(100); // a job that is not waitable: looked at again, growing to 1 s
  auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer pause(ex);
  for (;;) {
    if (!found || !*found || terminal(**found)) co_return found;
    const auto now = clock::now();
    if (now >= until) co_return found;
    const auto left = std::chrono::duration_cast<milliseconds>(until - now);
    bool news = false;
    if ((*found)->waitable) {
      // Up to a second inside Redis, then a look anyway every 5 s (an announcement can be
      // trimmed away under a burst of 10,000 ends, or lost with an unsynced Redis).
      const auto block = std::max<std::int64_t>(1, std::min<std::int64_t>(1000, left.count()));
      redis::request req("XREAD", "COUNT", "1000", "BLOCK", std::to_string(block), "STREAMS",
                         k.finished, last);
      redis::exec_options o = opts_;
      o.extra_timeout = milliseconds(block); // the wait inside Redis is not a silent server
      auto r = redis::connection::single(co_await conn_.exec(req, o));
      if (!r) co_return r.error();
      if (r->is_array())
        for (const auto& stream : r->elements()) {
          if (!stream.is_array() || stream.elements().size() != 2) continue;
          for (const auto& entry : stream.elements()[1].elements()) {
            last = entry.elements()[0].str();
            const auto& kv = entry.elements()[1].elements();
            for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
              if (kv[i].str() == "id" && kv[i + 1].str() == id) news = true;
          }
        }
      if (!news && clock::now() - looked < std::chrono::seconds(5)) continue;
    } else {
      pause.expires_after(std::min(again, left));
      co_await pause.async_wait(boost::asio::use_awaitable);
      again = std::min(again * 2, milliseconds(1000));
    }
    found = co_await get_job(queue, id);
    looked = clock::now();
  }
}

} // namespace forq
