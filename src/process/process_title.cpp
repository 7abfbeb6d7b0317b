// Process titles: ps and top show "forq: master", "forq: worker 3 [draining]". The title
// overwrites the argv strings (the classic way; /proc/<pid>/cmdline reads that memory), so it
// is cut to the length the command line had; prctl(PR_SET_NAME) sets the short name top shows.
#include "process/process_title.hpp"

#include <cstring>
#include <sys/prctl.h>

namespace forq::process {
namespace {
char* area = nullptr;
std::size_t area_size = 0;
} // namespace

void init_process_title(int argc, char** argv) {
  if (argc < 1 || !argv[0]) return;
  area = argv[0];
  // argv strings are contiguous; use them all.
  char* end = argv[0] + std::strlen(argv[0]);
  for (int i = 1; i < argc; ++i)
    if (argv[i] == end + 1) end = argv[i] + std::strlen(argv[i]);
  area_size = static_cast<std::size_t>(end - area) + 1;
}

void set_process_title(const std::string& title) {
  ::prctl(PR_SET_NAME, title.substr(0, 15).c_str(), 0, 0, 0);
  if (!area || area_size < 2) return;
  auto n = std::min(title.size(), area_size - 1);
  std::memcpy(area, title.data(), n);
  std::memset(area + n, 0, area_size - n);
}

} // namespace forq::process
