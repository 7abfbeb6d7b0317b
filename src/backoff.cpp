#include "backoff.hpp"

#include <algorithm>

namespace forq {

std::chrono::milliseconds backoff_wait(const backoff_policy& p, int n, std::uint64_t random) {
  auto w = std::min(p.first, p.max);
  if (p.doubling)
    for (int i = 1; i < n && w < p.max; ++i)
      w = std::min(w * 2, p.max);
  if (!p.jitter || w.count() <= 0) return w;
  const auto half = w.count() / 2;
  const auto spread = static_cast<std::uint64_t>(w.count() - half) + 1;
  return std::chrono::milliseconds(half + static_cast<long long>(random % spread));
}

std::chrono::milliseconds backoff::next() {
  state_ += 0x9e3779b97f4a7c15ULL; // splitmix64
  auto z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return backoff_wait(policy_, ++waits_, z ^ (z >> 31));
}

} // namespace forq
