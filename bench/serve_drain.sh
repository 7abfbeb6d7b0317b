#!/usr/bin/env bash
# forq serve draining N no-op jobs with W workers, beside W = 1, in alternating rounds on one
# private redis-server (issue 5's figure). Prints jobs/s per round, medians, the ratio, and each
# worker's RSS after the drain.
#   bench/serve_drain.sh [rounds=3] [jobs=100000] [workers=0 (one per CPU)] [build dir=build]
set -euo pipefail
rounds=${1:-3}
jobs=${2:-100000}
workers=${3:-0}
build=${4:-build}
forq="$build/forq"
port=$((20000 + RANDOM % 10000))
dir=$(mktemp -d)
redis-server --port "$port" --save "" --appendonly no --dir "$dir" --daemonize yes \
  --pidfile "$dir/redis.pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
url="redis://127.0.0.1:$port"
seq 1 "$jobs" | sed 's/.*/{"n":&}/' > "$dir/jobs.ndjson"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

one_round() { # $1 workers -> prints jobs/s, and RSS lines to stderr
  redis-cli -p "$port" flushall >/dev/null
  "$forq" enqueue --redis "$url" --handler noop < "$dir/jobs.ndjson" > /dev/null
  "$forq" serve --redis "$url" --workers "$1" --data-dir "$dir/data" 2> "$dir/serve.log" &
  local master=$!
  until grep -q "consuming" "$dir/serve.log" 2>/dev/null; do sleep 0.01; done
  local start end
  start=$(date +%s.%N)
  until [ "$(redis-cli -p "$port" hget 'forq:{default}:stats' completed)" = "$jobs" ]; do
    sleep 0.01
  done
  end=$(date +%s.%N)
  for p in $(pgrep -P "$master"); do
    echo "  worker pid $p RSS $(awk '/VmRSS/ {print $2, $3}' /proc/"$p"/status)" >&2
  done
  kill -TERM "$master"
  wait "$master" || true
  awk -v s="$start" -v e="$end" -v n="$jobs" 'BEGIN {printf "%.0f\n", n / (e - s)}'
}

many=() single=()
for ((i = 1; i <= rounds; i++)); do
  m=$(one_round "$workers")
  o=$(one_round 1)
  many+=("$m") single+=("$o")
  echo "round $i: workers=$workers (0 = one per CPU) $m jobs/s; 1 worker $o jobs/s"
done
mm=$(printf '%s\n' "${many[@]}" | median)
mo=$(printf '%s\n' "${single[@]}" | median)
echo "median of $rounds: $mm jobs/s with workers=$workers; $mo jobs/s with 1;" \
  "ratio $(awk -v a="$mm" -v b="$mo" 'BEGIN {printf "%.2f", a / b}')"
