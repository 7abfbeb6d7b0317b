#!/usr/bin/env bash
# Configures and builds forq with Ninja (and ccache when present).
#   scripts/build.sh [BUILD_DIR] [extra cmake arguments...]
# Defaults: build/ in Release, warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORQ_WERROR=ON "$@" >/dev/null
elif [ $# -gt 0 ]; then
  cmake -S . -B "$dir" "$@" >/dev/null
fi
cmake --build "$dir"
