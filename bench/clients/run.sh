#!/usr/bin/env bash
# Producer speed, side by side in one run (docs/benchmarks.md, "Clients"): forq's Node client
# against BullMQ's Queue.addBulk, forq's Python client against RQ's enqueue_many and Celery's
# apply_async, each client against `forq enqueue`'s own bulk rate; and each one's single enqueue
# round trip. One redis-server on a free port, flushed before each measurement; ROUNDS rounds,
# the order turned each round; medians.
#   bench/clients/run.sh [N=100000] [ROUNDS=5] [SINGLES=2000]
# Needs build/forq, clients/node's node_modules (scripts/test.sh) and the peers
# (bench/peers/install.sh: bullmq, python3-rq, python3-celery).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000} rounds=${2:-5} singles=${3:-2000}
forq=${FORQ:-$root/build/forq}
py=/usr/bin/python3
tmp=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; rm -rf "$tmp"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
seq 0 $((n - 1)) | sed 's/.*/{"i":&}/' >"$tmp/jobs.ndjson"

redis_cpu() { # Redis's CPU time so far, s
  redis-cli -p "$port" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'
}

one() { # who -> one JSON line
  redis-cli -p "$port" flushall >/dev/null
  case $1 in
  cli)
    local t0 t1 c0 c1
    c0=$(redis_cpu)
    t0=$(date +%s%N)
    "$forq" enqueue --redis "redis://127.0.0.1:$port" --queue bench-cli --handler noop \
      <"$tmp/jobs.ndjson" >/dev/null 2>"$tmp/cli.err"
    t1=$(date +%s%N)
    c1=$(redis_cpu)
    echo "{\"who\": \"forq-enqueue\", \"bulk_jobs_per_s\": $(( n * 1000000000 / (t1 - t0) )), \"redis_us_per_job\": $($py -c "print(($c1 - $c0) * 1e6 / $n)"), \"single_us\": null}" ;;
  node-*) node "$root/bench/clients/enqueue.js" "${1#node-}" "$port" "$n" "$singles" ;;
  python-*) $py "$root/bench/clients/enqueue.py" "${1#python-}" "$port" "$n" "$singles" ;;
  esac
}

whos=(cli node-forq node-bullmq python-forq python-rq python-celery)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < ${#whos[@]}; i++)); do
    one "${whos[$(( (i + r) % ${#whos[@]} ))]}"
  done
done >"$tmp/results.jsonl"

$py - "$tmp/results.jsonl" "$n" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n, rounds = sys.argv[2], sys.argv[3]
med = {}
for who in dict.fromkeys(r["who"] for r in rows):
    mine = [r for r in rows if r["who"] == who]
    bulk = statistics.median(r["bulk_jobs_per_s"] for r in mine)
    cpu = statistics.median(r["redis_us_per_job"] for r in mine)
    singles = [r["single_us"] for r in mine if r["single_us"] is not None]
    med[who] = (bulk, statistics.median(singles) if singles else None, cpu)
print("%s jobs a bulk enqueue, %s rounds, medians" % (n, rounds))
print("| producer | bulk jobs/s | Redis CPU µs/job (bulk) | single enqueue µs |")
print("|---|---:|---:|---:|")
for who, (bulk, single, cpu) in med.items():
    print("| %s | %s | %.1f | %s |" % (who, format(round(bulk), ","), cpu,
                                      "-" if single is None else "%.0f" % single))
cli = med["forq-enqueue"][0]
def ratio(a, b): return med[a][0] / med[b][0]
print()
print("node-forq / node-bullmq bulk: %.2fx; single: %.2fx faster" % (
    ratio("node-forq", "node-bullmq"), med["node-bullmq"][1] / med["node-forq"][1]))
best = max(("python-rq", "python-celery"), key=lambda w: med[w][0])
print("python-forq / %s (the faster Python peer) bulk: %.2fx; single vs rq: %.2fx faster" % (
    best, ratio("python-forq", best), med["python-rq"][1] / med["python-forq"][1]))
print("forq enqueue bulk / node-forq: %.2fx; / python-forq: %.2fx (target: within 1.5x)" % (
    cli / med["node-forq"][0], cli / med["python-forq"][0]))
PY
