# Every dependency comes from a Debian 12 package; scripts/install-deps.sh installs them.
# A missing one stops configure with the name of the package to install.

macro(forq_require found package)
  if(NOT ${found})
    message(FATAL_ERROR
      "forq: ${ARGN} not found. Install the Debian package '${package}' "
      "(apt-get install ${package}), or run scripts/install-deps.sh as root.")
  endif()
endmacro()

find_package(Boost 1.81 QUIET CONFIG COMPONENTS json url)
forq_require(Boost_FOUND "libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev"
  "Boost 1.81 (headers, JSON, URL)")

find_package(spdlog QUIET CONFIG)
forq_require(spdlog_FOUND libspdlog-dev "spdlog")

find_package(CLI11 QUIET CONFIG)
forq_require(CLI11_FOUND libcli11-dev "CLI11")

find_package(PkgConfig QUIET)
forq_require(PKG_CONFIG_FOUND pkg-config "pkg-config")
pkg_check_modules(hiredis QUIET IMPORTED_TARGET hiredis)
forq_require(hiredis_FOUND libhiredis-dev "hiredis")

find_package(OpenSSL QUIET)
forq_require(OPENSSL_FOUND libssl-dev "OpenSSL (TLS to Redis)")

find_package(Threads REQUIRED)

# Time zones for schedules (date/tz.h over the system's tzdata: GCC 12's <chrono> has no tzdb).
find_package(date QUIET CONFIG)
forq_require(date_FOUND libhowardhinnant-date-dev "date (time zones)")

if(FORQ_BUILD_TESTS)
  find_package(GTest QUIET CONFIG)
  forq_require(GTest_FOUND "libgtest-dev libgmock-dev" "GoogleTest")
endif()
