#pragma once

// The table of settings (fields.cpp), private to src/config: config.cpp builds it once
// (config_fields()).

#include "config/config.hpp"

#include <vector>

namespace forq {

std::vector<config_field> make_fields();

} // namespace forq
