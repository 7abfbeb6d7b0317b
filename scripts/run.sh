#!/usr/bin/env bash
# README command 1: installs what is missing, builds (Release) and runs `forq serve` on the
# embedded Redis (in ./.forq). Extra arguments go to `forq serve`. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
exec build/forq serve "$@"
