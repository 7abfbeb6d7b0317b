#!/usr/bin/env bash
# 10,000 waits at once through faults (docs/job-control.md, "Wait"; issue 31's acceptance at
# scale, too heavy for CI): forq serve with 2 workers on a redis-server with appendfsync always,
# the queue rate-limited to 1,000 jobs/s so the faults land mid-way; bench/waits_at_scale.py
# opens every wait at once (POST ...?wait=60), kills a worker with -9 at 3 s and shuts Redis
# down at 5 s (a loop here starts it again on its AOF), asks again by id after a failed wait,
# and prints how many ended, with the wrong result, or not at all.
#
#   bench/waits_at_scale.sh [JOBS]      (default 10000; run from the tree, after a build)
set -u
jobs=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
forq=$root/build/forq
dir=$(mktemp -d /tmp/forq-waits.XXXXXX)
redis_port=$((20000 + RANDOM % 10000)); http_port=$((redis_port + 1))
( while [ ! -f "$dir/stop" ]; do
    redis-server --port $redis_port --dir "$dir" --appendonly yes --appendfsync always --save '' \
      >> "$dir/redis.log" 2>&1
    sleep 1
  done ) &
sleep 1
"$forq" limit default 1000 --create --redis redis://127.0.0.1:$redis_port
"$forq" serve --redis redis://127.0.0.1:$redis_port --workers 2 --listen 127.0.0.1:$http_port \
  > "$dir/serve.log" 2>&1 &
serve=$!
sleep 2
worker=$(pgrep -P $serve | head -1)
python3 "$root/bench/waits_at_scale.py" $http_port "$jobs" "$worker" "redis-cli -p $redis_port"
kill $serve; wait $serve
touch "$dir/stop"; redis-cli -p $redis_port shutdown nosave > /dev/null 2>&1
wait
echo "logs in $dir"
