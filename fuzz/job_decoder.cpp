// libFuzzer target: what a Redis server (or a foreign producer, through Redis) can hand a
// consumer. The bytes go three ways: as a RESP stream into the reply parser (split at a point
// the input chooses), every reply it yields tried as a stream entry (parse_entry, then the JSON
// forq writes from a job); as "field\nvalue\n..." pairs making one entry; and whole through
// check_json. Nothing may crash, hang or leak; a bad job must come back as a reason.
#include "forq/redis/reply.hpp"
#include "queue/job.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

void try_entry(const forq::redis::reply& entry) {
  auto parsed = forq::queue::parse_entry("q", "forq:{q}:stream", 0, entry);
  if (auto* job = std::get_if<forq::queue::delivered_job>(&parsed)) {
    (void)forq::queue::to_json(*job, job->attempt + 1, {{"last_error", "x"}});
    (void)forq::queue::handoff_json(*job, 1796650000000);
  } else if (std::get<std::string>(parsed).empty()) {
    __builtin_trap(); // a refusal always says why
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  forq::redis::reply_parser parser;
  std::size_t cut = size ? data[0] % (size + 1) : 0;
  parser.feed(in.substr(0, cut));
  parser.feed(in.substr(cut));
  forq::redis::reply r;
  for (int i = 0; i < 64 && parser.next(r) == forq::redis::reply_parser::status::reply; ++i) {
    try_entry(r);
    if (r.is_array())
      for (const auto& e : r.elements())
        try_entry(e);
  }

  std::vector<forq::redis::reply> kv;
  std::size_t at = 0;
  while (at <= in.size() && kv.size() < 64) {
    auto nl = in.find('\n', at);
    auto piece = in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    kv.push_back(forq::redis::reply::make_string(std::string(piece)));
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  std::vector<forq::redis::reply> entry;
  entry.push_back(forq::redis::reply::make_string("1-1"));
  entry.push_back(forq::redis::reply::make_array(std::move(kv)));
  try_entry(forq::redis::reply::make_array(std::move(entry)));

  (void)forq::queue::check_json(in);
  return 0;
}
