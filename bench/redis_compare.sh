#!/usr/bin/env bash
# forq's Redis connection beside redis-benchmark, on one private redis-server, in one run.
#   bench/redis_compare.sh [ROUNDS] [REQUESTS]
# Both drive one connection with 64 commands in flight (redis-benchmark -P 64 -c 1; forq: 64
# coroutines on one pipelined connection), 3-byte values, alternating which goes first. Prints
# the median of the rounds for each, and forq's ratio. Needs a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
requests=${2:-1000000}
bench=build/bench/forq_redis_bench
[ -x "$bench" ] || { echo "build first: scripts/build.sh build" >&2; exit 1; }

dir=$(mktemp -d /tmp/forq-bench-XXXXXX)
port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; [ -n "${FORQ_BENCH_KEEP:-}" ] || rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

redis_cpu() { # redis-server's CPU seconds so far
  awk '{print ($14 + $15) / 100}' "/proc/$redis_pid/stat"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: > "$dir/results"
for round in $(seq "$rounds"); do
  for who in redis forq; do
    [ $((round % 2)) -eq 0 ] && who=$([ "$who" = redis ] && echo forq || echo redis)
    for cmd in set get; do
      before=$(redis_cpu)
      if [ "$who" = redis ]; then
        rps=$(redis-benchmark -p "$port" -P 64 -c 1 -n "$requests" -d 3 -t "$cmd" --csv -q |
          awk -F'"' -v c="${cmd^^}" '$2 == c {print $4}')
        client_us=NA
      else
        line=$("$bench" --url "redis://127.0.0.1:$port" --command "$cmd" --requests "$requests" \
          --pipeline 64 --payload 3)
        rps=$(echo "$line" | cut -d, -f4)
        client_us=$(echo "$line" | cut -d, -f5)
      fi
      after=$(redis_cpu)
      server_us=$(awk -v a="$after" -v b="$before" -v n="$requests" 'BEGIN {printf "%.3f", (a - b) * 1e6 / n}')
      echo "$who $cmd $rps $client_us $server_us" >> "$dir/results"
    done
  done
done

echo "median of $rounds rounds, $requests requests each, 64 in flight on 1 connection, 3-byte values"
printf '%-8s %-4s %14s %14s %16s %16s\n' client cmd "requests/s" "vs redis-bm" "client us/req" "server us/req"
for cmd in set get; do
  base=$(awk -v c="$cmd" '$1 == "redis" && $2 == c {print $3}' "$dir/results" | median)
  for who in redis forq; do
    rps=$(awk -v w="$who" -v c="$cmd" '$1 == w && $2 == c {print $3}' "$dir/results" | median)
    client=-
    [ "$who" = forq ] && client=$(awk -v c="$cmd" '$1 == "forq" && $2 == c {print $4}' "$dir/results" | median)
    server=$(awk -v w="$who" -v c="$cmd" '$1 == w && $2 == c {print $5}' "$dir/results" | median)
    ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2fx", a / b}')
    printf '%-8s %-4s %14.0f %14s %16s %16s\n' "$who" "$cmd" "$rps" "$ratio" "$client" "$server"
  done
done
