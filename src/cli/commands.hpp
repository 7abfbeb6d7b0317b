#pragma once

#include "forq/config.hpp"

namespace forq::cli {

// `forq serve`: the long-running service. Returns the process exit code (forq/exit_codes.hpp).
int serve(const config& cfg);

} // namespace forq::cli
