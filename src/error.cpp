#include "forq/error.hpp"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <string>

namespace forq {
namespace {

// Boost's error_category has a protected non-virtual destructor by design; instances are never
// deleted through a base pointer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "forq"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::redis_connection_lost:
      return "redis connection lost before the reply (the command may have run)";
    case errc::redis_timeout:
      return "redis did not reply in time";
    case errc::redis_retry_later:
      return "redis is busy or loading; retry later";
    case errc::redis_shutdown:
      return "redis connection stopped";
    case errc::redis_protocol:
      return "redis sent a malformed reply";
    case errc::invalid_job:
      return "the job is invalid";
    case errc::queue_schema_mismatch:
      return "the queue was written by an incompatible forq";
    case errc::redis_refused:
      return "Redis refused the command";
    case errc::redis_unavailable:
      return "Redis unreachable: no connection before the deadline (nothing was sent)";
    case errc::redis_auth_failed:
      return "Redis refused forq's credentials (retrying cannot help)";
    case errc::redis_refuses_writes:
      return "Redis refuses writes (out of memory, a read-only replica, or a failed save)";
    case errc::redis_not_confirmed:
      return "not confirmed: fewer replicas than redis.durability asks for acknowledged the "
             "write in time (it was made on the primary and may still exist)";
    case errc::invalid_value:
      return "a value is not allowed";
    case errc::embedded_redis_failed:
      return "the embedded redis-server did not start";
    }
    return "forq error " + std::to_string(ev);
  }
};
#pragma GCC diagnostic pop

} // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

void throw_exception_from_error(const error& e, const boost::source_location& loc) {
  boost::throw_exception(boost::system::system_error(e.code(), e.message()), loc);
}

} // namespace forq
