#pragma once
// Close-on-exec for the descriptors forq opens. Asio opens and accepts sockets without
// SOCK_CLOEXEC, so a command a handler runs would inherit the worker's Redis connections and its
// HTTP listener (docs/handlers.md says what a command gets). Each socket forq opens is marked
// here as soon as it exists; the exec handler also closes everything above 2 at the spawn.
#include <fcntl.h>

namespace forq {

inline void set_cloexec(int fd) noexcept {
  if (fd < 0) return;
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

} // namespace forq
