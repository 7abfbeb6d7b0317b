#pragma once

// The contract between a forq process and whoever runs it (the master, systemd, a shell).
namespace forq::exit_code {

inline constexpr int ok = 0;
// A runtime failure that may go away on its own (Redis lost for good, a crash path we caught).
inline constexpr int failure = 1;
// Fatal: bad flags, bad config, missing redis-server, unusable data directory. Restarting with
// the same input cannot help, so the master never respawns a child that exits with it.
inline constexpr int fatal = 2;
// A wait ended before the job did (forq enqueue --wait, forq job --wait): as timeout(1) says it.
inline constexpr int wait_timeout = 124;

} // namespace forq::exit_code
