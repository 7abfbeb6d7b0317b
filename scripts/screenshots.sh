#!/usr/bin/env bash
# Writes the dashboard's screenshots for docs/dashboard.md (docs/images/dashboard-*.png) from a
# real headless Chromium: the browser test run against a seeded Redis (tests/browser/).
#   scripts/screenshots.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
/usr/bin/python3 tests/browser/dashboard_test.py "$build/forq" "$shots"
mkdir -p docs/images
for page in overview queue job workers; do
  cp "$shots/$page.png" "docs/images/dashboard-$page.png"
done
echo "docs/images/dashboard-{overview,queue,job,workers}.png written"
