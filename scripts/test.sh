#!/usr/bin/env bash
# README command 2: installs what is missing, builds (Release, warnings as errors) and runs the
# whole test suite through ctest. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
