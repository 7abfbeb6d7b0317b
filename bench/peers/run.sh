#!/usr/bin/env bash
# forq beside BullMQ, bee-queue, Sidekiq, Celery and RQ: the same two workloads (drain: N no-op
# jobs enqueued, then drained by one worker process; steady: one worker process, a producer at
# R jobs/s for D seconds) on one private redis-server, one after another, each on a flushed DB.
# Prints one markdown table (forq's row first, then each peer with forq's drain ratio) and
# writes every raw JSON line to a file whose path it prints. bench/peers/README.md explains.
#   bench/peers/install.sh                       # once, as root
#   bench/peers/run.sh [JOBS=100000] [RATE=1000] [DURATION=10]
# Environment: FORQ_BIN (default build/forq under the repository root), PEERS (default
# "bullmq bee-queue sidekiq celery rq"), RESULTS (the JSON lines file).
set -uo pipefail
jobs=${1:-100000}
rate=${2:-1000}
duration=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
forq_bin=${FORQ_BIN:-$root/build/forq}
peers=${PEERS:-bullmq bee-queue sidekiq celery rq}
python=/usr/bin/python3
mkdir -p "$here/results"
results=${RESULTS:-$here/results/peers-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: >"$results"

tmp=$(mktemp -d /tmp/forq-peers.XXXXXX)
step= # the running peer step's process group
cleanup() {
  if [[ -n $step ]]; then
    kill -TERM -- "-$step" 2>/dev/null
    wait "$step" 2>/dev/null
  fi
  if [[ -f $tmp/redis.pid ]]; then
    kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    for _ in $(seq 50); do [[ -f $tmp/redis.pid ]] || break; sleep 0.1; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$($python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" >/dev/null
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "run.sh: redis-server did not start on port $port:" >&2
  cat "$tmp/redis.log" >&2
  exit 1
fi
url="redis://127.0.0.1:$port"
echo "redis-server $(redis-cli -p "$port" info server | tr -d '\r' | awk -F: '/^redis_version/ {print $2}')" \
  "on port $port; drain $jobs jobs, steady $rate jobs/s for $duration s; raw results: $results" >&2

flush() { redis-cli -p "$port" flushall >/dev/null; }

# A failed step still leaves a JSON line, so the table can say what failed.
fail_line() { # peer workload message
  jq -cn --arg p "$1" --arg w "$2" --arg e "$3" '{peer: $p, workload: $w, error: $e, verified: false}'
}

# One JSON object? (jq alone says yes to empty input.)
is_object() { [[ -n $1 ]] && jq -e 'type == "object"' >/dev/null 2>&1 <<<"$1"; }

# forq, through its own harness: one worker process, concurrency 256 (forq's setting for short
# jobs; the default, 64, suits handlers that hold a process or a connection each).
run_forq() { # workload, then forq bench flags
  local w=$1
  shift
  flush
  local out rc
  out=$("$forq_bin" bench "$w" "$@" --workers 1 --concurrency 256 --redis "$url" --listen 127.0.0.1:0 \
    --data-dir "$tmp/forq-data" --json 2>"$tmp/forq.err")
  rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "run.sh: forq $w exited $rc; its stderr:" >&2
    tail -n 20 "$tmp/forq.err" >&2
  fi
  if ! is_object "$out"; then
    fail_line forq "$w" "exit $rc: $(tail -n 3 "$tmp/forq.err" | tr '\n' ' ')" >>"$results"
    return
  fi
  jq -c --arg v "$("$forq_bin" --version 2>/dev/null | awk '{print $NF}')" --arg w "$w" '
    def m(k): .summary[k].median;
    {peer: "forq", version: $v,
     settings: "forq bench \($w) --workers 1 (one worker process), concurrency \(.concurrency)",
     workload: $w, jobs: .jobs, jobs_per_s: m("jobs_per_s"),
     worker_cpu_us_per_job: m("worker_cpu_us_per_job"),
     redis_cpu_us_per_job: m("redis_cpu_us_per_job"),
     pickup_p50_us: (if $w == "steady" then m("pickup_us_p50") else null end),
     pickup_p99_us: (if $w == "steady" then m("pickup_us_p99") else null end),
     completed: .runs[0].completed, verified: .verified, redis_version: .redis_version}' \
    <<<"$out" >>"$results"
}

run_peer() { # peer workload
  local cmd
  case $1 in
    bullmq) cmd=(node "$here/bullmq.js") ;;
    bee-queue) cmd=(node "$here/beequeue.js") ;;
    sidekiq) cmd=(ruby "$here/sidekiq_peer.rb") ;;
    celery) cmd=("$python" "$here/celery_peer.py") ;;
    rq) cmd=("$python" "$here/rq_peer.py") ;;
    *) fail_line "$1" "$2" "unknown peer" >>"$results"; return ;;
  esac
  if ! command -v "${cmd[0]}" >/dev/null 2>&1; then
    fail_line "$1" "$2" "${cmd[0]} is not installed (bench/peers/install.sh)" >>"$results"
    return
  fi
  flush
  local out rc
  # Generous: the drivers give up by themselves after 60 s without progress. timeout puts the
  # driver and its worker in a process group of their own (its pid), which the traps end.
  timeout $((300 + jobs / 20 + $(printf "%.0f" "$duration") * 2)) "${cmd[@]}" --redis-port "$port" \
    --workload "$2" --jobs "$jobs" --rate "$rate" --duration "$duration" \
    >"$tmp/$1-$2.out" 2>"$tmp/$1-$2.err" &
  step=$!
  wait "$step"
  rc=$?
  step=
  out=$(tail -n 1 "$tmp/$1-$2.out")
  if is_object "$out"; then
    echo "$out" >>"$results"
  else
    fail_line "$1" "$2" "exit $rc: $(tail -n 3 "$tmp/$1-$2.err" | tr '\n' ' ')" >>"$results"
  fi
  if [[ $rc -ne 0 ]]; then
    echo "run.sh: $1 $2 failed (exit $rc); its stderr:" >&2
    tail -n 20 "$tmp/$1-$2.err" >&2
  fi
}

echo "forq drain..." >&2
run_forq drain --jobs "$jobs"
echo "forq steady..." >&2
run_forq steady --rate "$rate" --duration "$duration"
for p in $peers; do
  for w in drain steady; do
    echo "$p $w..." >&2
    run_peer "$p" "$w"
  done
done

# The table (table.py can print it again from a results file).
$python "$here/table.py" "$results" "$rate" "$duration"
echo "raw results: $results" >&2
