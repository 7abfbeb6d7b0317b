#pragma once

// Checks on JSON text that Boost.JSON's parser does not make.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace forq {

struct repeated_key {
  std::string path;   // dotted from the top object: "redis.url", "handlers.resize"
  std::size_t offset; // where in the text the second occurrence ends
};

// The first key that appears twice in one object of `text` (Boost.JSON keeps the last silently;
// forq refuses such text wherever a person wrote it: a config file, --handlers, an API body).
// Nothing if every object's keys are distinct, or if `text` is not JSON (parse it for that).
std::optional<repeated_key> first_repeated_key(std::string_view text);

} // namespace forq
