#include "forq/queue/job.hpp"
#include "forq/queue/producer.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <charconv>

namespace forq::queue {

namespace {

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Accepts every event: basic_parser alone checks the grammar and the depth.
struct validate_only {
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  using ec_t = boost::system::error_code;
  using sv = boost::json::string_view;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t, ec_t&) { return true; }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) { return true; }
  bool on_key_part(sv, std::size_t, ec_t&) { return true; }
  bool on_key(sv, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
  bool on_double(double, sv, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }
};

} // namespace

boost::system::error_code check_json(std::string_view text) {
  boost::json::basic_parser<validate_only> p{boost::json::parse_options()};
  boost::system::error_code ec;
  auto used = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  return ec;
}

std::variant<delivered_job, std::string> parse_entry(std::string_view queue,
                                                     std::string_view stream, int priority,
                                                     const redis::reply& entry) {
  if (!entry.is_array() || entry.elements().size() != 2 || !entry.elements()[1].is_array())
    return std::string("not a stream entry: ") + entry.to_string();
  delivered_job j;
  j.queue = queue;
  j.stream = stream;
  j.priority = priority;
  j.entry_id = entry.elements()[0].str();
  const auto& kv = entry.elements()[1].elements();
  if (kv.size() % 2 != 0) return std::string("odd number of fields");
  bool has_payload = false;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
    std::string k(kv[i].str()), v(kv[i + 1].str());
    if (k == "id")
      j.id = v;
    else if (k == "handler")
      j.handler = v;
    else if (k == "payload") {
      j.payload = v;
      has_payload = true;
    }
    else if (k == "attempt" || k == "max_attempts") {
      auto n = to_int(v);
      if (!n || *n < 0) return "field " + k + " is not a whole number: \"" + v + "\"";
      if (k == "attempt")
        j.attempt = *n;
      else
        j.max_attempts = *n;
    }
    j.fields.emplace_back(std::move(k), std::move(v));
  }
  if (j.id.empty()) j.id = j.entry_id; // a first attempt: the entry id is the job id
  // The producer's limits (check_job), for jobs written by anyone: a foreign producer may skip
  // them. Said without echoing the value, which may be huge.
  if (j.payload.size() > default_max_payload)
    return "payload is " + std::to_string(j.payload.size()) + " bytes; the limit is " +
           std::to_string(default_max_payload);
  if (j.id.size() > 256) return "id is " + std::to_string(j.id.size()) + " bytes; the limit is 256";
  if (j.handler.size() > 128)
    return "handler name is " + std::to_string(j.handler.size()) +
           " bytes; the limit is 128";
  if (!has_payload) return std::string("no payload field (every job needs one: JSON text)");
  if (auto ec = check_json(j.payload)) return "payload is not JSON: " + ec.message();
  return j;
}

std::string to_json(const delivered_job& j, int attempt,
                    const std::vector<std::pair<std::string, std::string>>& extra) {
  boost::json::object o;
  for (const auto& [k, v] : j.fields)
    o[k] = v;
  o["id"] = j.id;
  o["attempt"] = std::to_string(attempt);
  o["priority"] = std::to_string(j.priority);
  for (const auto& [k, v] : extra)
    o[k] = v;
  return boost::json::serialize(o);
}

std::string handoff_json(const delivered_job& j) {
  boost::json::object o;
  o["id"] = j.id;
  o["queue"] = j.queue;
  o["handler"] = j.handler;
  o["attempt"] = j.attempt + 1;
  boost::system::error_code ec;
  auto payload = boost::json::parse(j.payload, ec);
  o["payload"] = ec ? boost::json::value(j.payload) : payload;
  return boost::json::serialize(o);
}

verdict decide(const retry_policy& p, int attempt_made, bool permanent, std::string_view error,
               std::optional<std::chrono::milliseconds> retry_after, std::mt19937_64& rng) {
  using std::chrono::milliseconds;
  if (permanent) return {false, {}, std::string(error)};
  if (attempt_made >= p.max_attempts)
    return {false,
            {},
            "failed " + std::to_string(attempt_made) + (attempt_made == 1 ? " time" : " times") +
                "; last error: " + std::string(error)};
  if (retry_after) return {true, std::min(*retry_after, p.max_backoff), {}};
  auto base = p.backoff;
  if (p.exponential)
    for (int i = 1; i < attempt_made && base < p.max_backoff; ++i)
      base *= 2;
  base = std::min(base, p.max_backoff);
  if (!p.exponential) return {true, base, {}};
  // Half fixed, half random, as the connection's backoff: retries of a burst spread out.
  auto half = base.count() / 2;
  std::uniform_int_distribution<long long> jitter(0, base.count() - half);
  return {true, milliseconds(half + jitter(rng)), {}};
}

} // namespace forq::queue
