#!/usr/bin/env bash
# Installs the Debian 12 packages forq needs to build, test and run.
# Idempotent: prints nothing and touches nothing when every package is present.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # libraries (Boost 1.81 parts used: Asio, JSON, URL)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libspdlog-dev libfmt-dev libcli11-dev libhiredis-dev libssl-dev
  # time zones for schedules (date/tz.h over tzdata)
  libhowardhinnant-date-dev tzdata
  # tests; clang and its runtime for the libFuzzer targets (fuzz/); the format check (CI)
  libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
  # the foreign-producer test: a Python producer written from docs/protocol.md alone; the
  # Python client (clients/python), its asyncio half and its install test (a venv)
  python3 python3-redis python3-venv python3-setuptools python3-wheel
  # redis-py's faster reply parser, which the Python client uses when it is there (benchmarks)
  python3-hiredis
  # the cron oracle: forq's schedule times checked against croniter's
  python3-croniter
  # the embedded default and the test servers
  redis-server redis-tools openssl
  # the API access test sends from a network namespace of its own (ip netns, veth)
  iproute2
  # the dashboard's tests and screenshots: a real headless browser driven by Selenium
  chromium chromium-driver python3-selenium
)

# The Node client's tests (clients/node): Debian's nodejs (18) and npm, unless a node and an npm
# are there already (a NodeSource nodejs carries its own npm, which Debian's npm would clash with).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "forq: missing Debian packages: ${missing[*]}" >&2
  echo "forq: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "forq: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
