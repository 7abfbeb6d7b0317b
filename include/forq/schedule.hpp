#pragma once

// Schedules declared in C++, beside the handlers (docs/schedules.md, docs/cpp-api.md):
//
//   forq::run(argc, argv, {{"report", report}},
//             {{.name = "nightly", .cron = "0 3 * * *", .tz = "Europe/London",
//               .handler = "report"}});
//
// They join the `schedules` setting: added or changed in Redis as each worker starts, and removed
// when the program (and the setting) no longer declare them.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace forq {

struct schedule_spec {
  std::string name{};                 // unique in its queue: 1 to 128 of A-Z a-z 0-9 _ . : -
  std::string queue = "default";      // whose keeper fires it and that gets its jobs
  std::string cron{};                 // a cron expression (5 or 6 fields, @daily, ...), or
  std::chrono::milliseconds every{0}; // a fixed interval aligned to the clock (1 s to 366 d)
  std::string tz{};                   // the cron expression's IANA zone; empty: UTC
  std::string handler{};              // empty: the queue's default handler
  std::string payload = "{}";         // JSON text
  int priority = 0;                   // 0 to 9
  std::optional<int> max_attempts{};
  std::string missed = "latest"; // skip | latest | all
  std::chrono::milliseconds grace{60000};
  std::string overlap = "allow"; // allow | skip | queue-one
};

using schedule_list = std::vector<schedule_spec>;

} // namespace forq
