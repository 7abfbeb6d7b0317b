#!/usr/bin/env bash
# forq at its defaults beside BullMQ's drain (issue 30, "At defaults"): N no-op jobs are queued,
# then a fresh `forq serve` with no flag but --redis starts (a worker per CPU, concurrency 64)
# and drains them; the time counts from its start to the last job completed, start-up included.
# BullMQ's driver (bench/peers/bullmq.js: one Worker process, concurrency 50) does the same
# around its worker. Rounds alternate forq and BullMQ on one private redis-server, flushed
# before each; prints each round and the medians, and forq's ratio.
#   bench/peers/install.sh                       # once, as root (node, bullmq)
#   bench/peers/at_defaults.sh [JOBS=400000] [ROUNDS=3]
# Environment: FORQ_BIN (default build/forq under the repository root).
set -euo pipefail
jobs=${1:-400000}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
forq_bin=${FORQ_BIN:-$root/build/forq}
tmp=$(mktemp -d /tmp/forq-defaults.XXXXXX)
serve=
cleanup() {
  [[ -n $serve ]] && kill -TERM "$serve" 2>/dev/null && wait "$serve" 2>/dev/null
  [[ -f $tmp/redis.pid ]] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" >/dev/null
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
now() { date +%s.%N; }

# The same ~100-byte payload the peers' harness sends, as NDJSON for `forq enqueue`.
python3 -c "
import sys
pad = 'x' * 60
sys.stdout.writelines('{\"seq\":%d,\"pad\":\"%s\"}\n' % (i, pad) for i in range($jobs))
" >"$tmp/jobs.ndjson"

forq_round() {
  redis-cli -p "$port" flushall >/dev/null
  # (it warns that no worker has started on the queue yet: none has, on purpose)
  "$forq_bin" enqueue --redis "$url" --handler noop <"$tmp/jobs.ndjson" >/dev/null 2>"$tmp/enqueue.err"
  mkdir -p "$tmp/run" && cd "$tmp/run"
  local t0 t1 done=0
  t0=$(now)
  "$forq_bin" serve --redis "$url" 2>"$tmp/serve.log" &
  serve=$!
  while [[ $done -lt $jobs ]]; do
    sleep 0.01
    done=$(redis-cli -p "$port" hget 'forq:{default}:stats' completed)
    done=${done:-0}
    if ! kill -0 "$serve" 2>/dev/null; then
      echo "at_defaults.sh: forq serve exited; its log:" >&2
      tail -20 "$tmp/serve.log" >&2
      exit 1
    fi
  done
  t1=$(now)
  kill -TERM "$serve"
  wait "$serve" || true
  serve=
  cd "$root"
  python3 -c "print(round($jobs / ($t1 - $t0)))"
}

bullmq_round() {
  node "$here/bullmq.js" --redis-port "$port" --workload drain --jobs "$jobs" 2>"$tmp/bullmq.err" |
    tail -n 1 | jq -r '.jobs_per_s | round'
}

forq_rates=() bullmq_rates=()
for r in $(seq "$rounds"); do
  f=$(forq_round)
  b=$(bullmq_round)
  echo "round $r: forq serve at defaults $f jobs/s (start-up included), BullMQ $b jobs/s" >&2
  forq_rates+=("$f") bullmq_rates+=("$b")
done
python3 - "${forq_rates[*]}" "${bullmq_rates[*]}" "$jobs" <<'EOF'
import statistics, sys
f = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
mf, mb = statistics.median(f), statistics.median(b)
print(f"{sys.argv[3]} jobs, medians of {len(f)} alternated rounds: forq serve at defaults "
      f"{mf:,.0f} jobs/s, BullMQ (one worker, concurrency 50) {mb:,.0f} jobs/s: forq {mf / mb:.1f}x")
EOF
