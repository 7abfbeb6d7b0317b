#pragma once

// The settings that hold lists, `queues` and `handlers`: how their text is read and shown
// (lists.cpp). config.cpp's field table calls these; nothing here touches Redis.

#include "config/config.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace forq::config_lists {

// A whole number from 0 to `max`, as a person typed it; nothing if it is not one.
std::optional<unsigned> parse_uint(std::string_view text, unsigned max);

// "NAME[:WEIGHT][=HANDLER][@RETRY],...": why `v` is refused, or nothing when c.queues was set.
std::optional<std::string> set_queues(config& c, std::string_view v);
std::string show_queues(const config& c);

// A JSON object of handler name -> {"exec": [...]} or {"http": URL} and their settings.
std::optional<std::string> set_handlers(config& c, std::string_view v);
std::string show_handlers(const config& c); // JSON

// A JSON array of schedules, or the path of a file holding one (read now): c.schedules_json.
std::optional<std::string> set_schedules(config& c, std::string_view v);
} // namespace forq::config_lists
