#!/usr/bin/env bash
# forq's queue protocol (forq_queue_drain) beside the bare structure it is built on
# (forq_queue_structures --structure streams-trim: XADD, XREADGROUP, XACK + XTRIM, nothing else),
# in alternating order on one private redis-server, so both see the same machine noise.
# Prints each round, then the medians of redis-server CPU µs per job and the ratio.
#   bench/queue_compare.sh [rounds=5] [jobs=100000] [build dir=build]
set -euo pipefail
rounds=${1:-5}
jobs=${2:-100000}
build=${3:-build}
port=$((20000 + RANDOM % 10000))
dir=$(mktemp -d)
redis-server --port "$port" --save "" --appendonly no --dir "$dir" --daemonize yes \
  --pidfile "$dir/redis.pid" >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
url="redis://127.0.0.1:$port"

total() { awk '/^total/ {print $4}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

bare=() forq=() enq=() drain=() cmds=()
for ((i = 1; i <= rounds; i++)); do
  redis-cli -p "$port" flushall >/dev/null
  b=$("$build/bench/forq_queue_structures" --url "$url" --structure streams-trim --jobs "$jobs" | total)
  redis-cli -p "$port" flushall >/dev/null
  out=$("$build/bench/forq_queue_drain" --url "$url" --jobs "$jobs")
  f=$(echo "$out" | total)
  bare+=("$b") forq+=("$f")
  enq+=("$(echo "$out" | awk '/^enqueue/ {print $4}')")
  drain+=("$(echo "$out" | awk '/^drain .*redis/ {print $4}')")
  cmds+=("$(echo "$out" | awk '/^total/ {print $7}')")
  echo "round $i: bare $b us/job, forq $f us/job (enqueue ${enq[-1]} + drain ${drain[-1]}), $(echo "$out" | awk '/jobs\/s/ {print $2}') jobs/s"
done
mb=$(printf '%s\n' "${bare[@]}" | median)
mf=$(printf '%s\n' "${forq[@]}" | median)
echo "median of $rounds: bare structure $mb us/job; forq protocol $mf us/job" \
  "(enqueue $(printf '%s\n' "${enq[@]}" | median) + drain $(printf '%s\n' "${drain[@]}" | median))," \
  "commands $(printf '%s\n' "${cmds[@]}" | median); forq / bare = $(awk -v f="$mf" -v b="$mb" 'BEGIN {printf "%.2f", f / b}')"
