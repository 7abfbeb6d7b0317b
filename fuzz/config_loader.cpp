// libFuzzer target: configuration as an operator can get it wrong. The first byte picks the
// source: a config file (the rest is its text) or flags (the rest is "key=value" lines); every
// value goes through the field table's validation. Nothing may crash; a refusal must say why;
// an accepted configuration must print (forq config).
#include "config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  forq::config_sources s;
  s.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  if (data[0] % 2 == 0) {
    static const std::string path = "/tmp/forq-fuzz-config-" + std::to_string(::getpid());
    std::ofstream(path, std::ios::trunc | std::ios::binary) << rest;
    s.config_file = path;
  } else {
    std::size_t at = 0;
    while (at < rest.size()) {
      auto nl = rest.find('\n', at);
      auto line = rest.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
      if (auto eq = line.find('='); eq != std::string_view::npos)
        s.flags[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
      if (nl == std::string_view::npos) break;
      at = nl + 1;
    }
  }
  auto r = forq::load_config(s);
  if (!r) {
    // A refusal always says why, in words of its own (not the code's generic sentence).
    if (r.error() != forq::errc::invalid_value || r.error().message() == r.error().code().message())
      __builtin_trap();
  } else {
    (void)forq::to_json(r->cfg);
  }
  return 0;
}
