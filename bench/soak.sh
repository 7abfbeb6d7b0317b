#!/usr/bin/env bash
# The soak (issue 8, docs/reliability.md): `forq bench mixed` at RATE jobs/s for SECONDS (retries,
# delays, sleeps and mixed payload sizes; every job verified at the end), sampling every 10 s
# each worker's private memory (RssAnon: the bench's shared counters, one byte per job, are
# RssShmem and grow with the run by design) and the memory of the bench's Redis. Both must
# stay flat.
# Not in CI (it takes its whole duration). Usage: bench/soak.sh [RATE] [SECONDS] [WORKERS]
set -euo pipefail
rate=${1:-5000}
seconds=${2:-600}
workers=${3:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
forq=${FORQ_BIN:-$root/build/forq}
out=$(mktemp -d /tmp/forq-soak-XXXXXX)
before=$(ls -d /tmp/forq-bench-* 2>/dev/null || true)

"$forq" bench mixed --rate "$rate" --duration "$seconds" --workers "$workers" --json \
  >"$out/bench.json" 2>"$out/bench.err" &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT

# The bench's own Redis: the new /tmp/forq-bench-* directory.
sock=
for _ in $(seq 100); do
  for d in /tmp/forq-bench-*; do
    [[ -S $d/redis.sock ]] || continue
    grep -qxF "$d" <<<"$before" && continue
    sock=$d/redis.sock
  done
  [[ -n $sock ]] && break
  sleep 0.1
done
[[ -n $sock ]] || { echo "soak: the bench's Redis did not appear" >&2; cat "$out/bench.err" >&2; exit 1; }

echo "soak: $rate jobs/s for $seconds s, $workers workers; samples every 10 s"
printf '%6s  %-28s  %14s\n' "t (s)" "worker RssAnon (MiB)" "Redis used MiB"
start=$(date +%s)
while kill -0 "$bench" 2>/dev/null; do
  t=$(($(date +%s) - start))
  rss=$(for pid in $(ps -eo pid=,args= | awk '/forq: worker [0-9]/ {print $1}'); do
    awk '/^RssAnon:/ {printf "%.1f ", $2/1024}' "/proc/$pid/status" 2>/dev/null
  done)
  mem=$(redis-cli -s "$sock" info memory 2>/dev/null | tr -d '\r' |
    awk -F: '/^used_memory:/ {printf "%.1f", $2/1048576}')
  [[ -n $mem ]] && printf '%6s  %-28s  %14s\n' "$t" "$rss" "$mem" | tee -a "$out/samples.txt"
  sleep 10
done
wait "$bench" && status=0 || status=$?
trap - EXIT
echo "soak: forq bench exited $status; its JSON: $out/bench.json"
if [[ $status -eq 0 ]]; then
  jq -c '{verified, jobs, runs: [.runs[0] | {completed, attempts, injected_failures, lost, duplicated, offered_jobs_per_s, pickup_us_p50, pickup_us_p99}]}' "$out/bench.json"
fi
exit "$status"
