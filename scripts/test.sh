#!/usr/bin/env bash
# README command 2: installs what is missing, builds (Release, warnings as errors) and runs the
# whole test suite through ctest. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
# The Node client's one dependency, at the version its lock file pins (tests/clients/).
if [ ! -f clients/node/node_modules/.package-lock.json ] ||
  [ clients/node/package-lock.json -nt clients/node/node_modules/.package-lock.json ]; then
  (cd clients/node && npm ci --no-audit --no-fund --loglevel=error)
fi
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
