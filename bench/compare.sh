#!/usr/bin/env bash
# The regression guard (docs/benchmarks.md, "How to keep forq fast"): builds two revisions of
# forq side by side and runs the same workloads on each, alternated round by round (A B, then
# B A, ...) so both see the same machine noise, then prints each figure's median per revision
# and the ratio B/A.
#
#   bench/compare.sh [-n ROUNDS] [-w WORKLOADS] REV_A [REV_B]
#
# REV_A, REV_B: anything `git rev-parse` takes (main, HEAD~3, a sha), or `.` for the work tree
# as it is now, uncommitted changes included; REV_B defaults to `.`. Each revision is checked
# out once into $FORQ_COMPARE_DIR (default /tmp/forq-compare) and built in its build/ in
# Release, the `forq` binary only (ccache makes later builds cheap); `.` uses build/ here.
# WORKLOADS (comma-separated, default drain,steady1k,steady20k):
#   drain      forq bench drain --workers 2 --jobs 200000
#   steady1k   forq bench steady --workers 1 --rate 1000 --duration 5
#   steady20k  forq bench steady --workers 2 --rate 20000 --duration 5
# Each run starts its own private redis-server (the bench's embedded one). A change to the hot
# path (src/queue, src/redis, src/worker, src/lua, the handlers' call path) is compared with the
# main it started from, and its note carries this script's output.
set -euo pipefail
rounds=5
workloads=drain,steady1k,steady20k
while getopts "n:w:" opt; do
  case $opt in
  n) rounds=$OPTARG ;;
  w) workloads=$OPTARG ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || {
  sed -n '2,20p' "$0" >&2
  exit 2
}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FORQ_COMPARE_DIR:-/tmp/forq-compare}
mkdir -p "$cache"

# The binary of revision $1, built if needed; its path on stdout.
build_rev() {
  local rev=$1 src name
  if [ "$rev" = . ]; then
    src=$root
    name=worktree
  else
    local sha
    sha=$(git -C "$root" rev-parse --verify "$rev^{commit}")
    name=${sha:0:12}
    src=$cache/src-$name
    if [ ! -d "$src" ]; then
      git -C "$root" worktree add --detach "$src" "$sha" >/dev/null 2>&1 ||
        { git -C "$root" worktree prune && git -C "$root" worktree add --detach "$src" "$sha" >/dev/null; }
    fi
  fi
  # The work tree's own build/ (scripts/build.sh's) when it is there; a checkout's build/ inside
  # it, so that with CCACHE_BASEDIR the compiler sees the same relative paths and ccache reuses
  # what another checkout compiled.
  local out=$src/build
  if [ ! -f "$out/build.ninja" ]; then
    cmake -S "$src" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORQ_WERROR=ON \
      -DFORQ_BUILD_TESTS=OFF -DFORQ_BUILD_BENCH=OFF -DFORQ_BUILD_EXAMPLES=OFF >/dev/null
  fi
  cmake --build "$out" --target forq >&2
  echo "$out/forq"
}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/}

echo "building $1 and ${2:-.}" >&2
bin_a=$(build_rev "$1")
bin_b=$(build_rev "${2:-.}")
label_a=$1
label_b=${2:-.}
[ "$label_b" = . ] && label_b="work tree"

exec python3 - "$bin_a" "$bin_b" "$label_a" "$label_b" "$rounds" "$workloads" <<'PY'
import json, statistics, subprocess, sys, tempfile

bin_a, bin_b, label_a, label_b, rounds, workloads = sys.argv[1:7]
rounds = int(rounds)
runs = {
    "drain": ["drain", "--workers", "2", "--jobs", "200000"],
    "steady1k": ["steady", "--workers", "1", "--rate", "1000", "--duration", "5"],
    "steady20k": ["steady", "--workers", "2", "--rate", "20000", "--duration", "5"],
}
figures = [("jobs_per_s", "jobs/s", "higher"), ("worker_cpu_us_per_job", "worker CPU us/job", "lower"),
           ("redis_cpu_us_per_job", "Redis CPU us/job", "lower"),
           ("redis_cmds_per_job", "Redis commands/job", "lower"),
           ("pickup_us_p99", "pick-up p99 us", "lower")]
chosen = [w for w in workloads.split(",") if w]
for w in chosen:
    if w not in runs:
        sys.exit(f"compare.sh: unknown workload {w}; use {', '.join(runs)}")


def one(binary, workload):
    with tempfile.TemporaryDirectory(prefix="forq-compare-") as d:
        cmd = [binary, "bench", *runs[workload], "--json", "--listen", "127.0.0.1:0",
               "--data-dir", d, "--log-level", "warn"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            sys.exit(f"compare.sh: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
        out = json.loads(p.stdout)
        if not out.get("verified", False):
            sys.exit(f"compare.sh: {binary} lost or duplicated jobs in {workload}")
        return {k: v["median"] for k, v in out["summary"].items()}


results = {w: {"A": [], "B": []} for w in chosen}
for r in range(rounds):
    order = [("A", bin_a), ("B", bin_b)] if r % 2 == 0 else [("B", bin_b), ("A", bin_a)]
    for w in chosen:
        for side, binary in order:
            got = one(binary, w)
            results[w][side].append(got)
            print(f"round {r + 1} {w:9} {side}: " +
                  ", ".join(f"{label} {got.get(key, float('nan')):.4g}" for key, label, _ in figures),
                  flush=True)

print()
print(f"A = {label_a}, B = {label_b}; medians of {rounds} alternated rounds")
print(f"{'workload':10} {'figure':20} {'A':>12} {'B':>12} {'B/A':>7}")
for w in chosen:
    for key, label, better in figures:
        a = statistics.median(x.get(key, float("nan")) for x in results[w]["A"])
        b = statistics.median(x.get(key, float("nan")) for x in results[w]["B"])
        ratio = b / a if a else float("nan")
        print(f"{w:10} {label:20} {a:12.4g} {b:12.4g} {ratio:7.3f}")
PY
