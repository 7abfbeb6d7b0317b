#!/bin/sh
# A project outside forq's tree, built against an installed forq: `cmake --install` into a
# temporary prefix, examples/wordcount configured on its own with find_package(forq), built,
# then run end to end (its serve with an embedded Redis, a job for a C++ handler, the result
# read back). Usage: consumer_project.sh BUILD_DIR SOURCE_DIR GENERATOR
set -eu
build=$1 src=$2 generator=$3
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/forq/forq.hpp"
test -f "$work/prefix/lib/cmake/forq/forqConfig.cmake"
test -x "$work/prefix/bin/forq"

launcher=
if command -v ccache >/dev/null; then launcher=-DCMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
cmake -S "$src/examples/wordcount" -B "$work/build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" $launcher >/dev/null
cmake --build "$work/build"

bin=$work/build/forq-wordcount
data=$work/data
"$bin" serve --data-dir "$data" --workers 1 --listen 127.0.0.1:0 2>"$work/serve.log" &
pid=$!
id=
for _ in $(seq 1 300); do # the embedded Redis is up once enqueue finds it
  if id=$("$bin" enqueue --data-dir "$data" --handler count_words '{"text":"a b c"}' 2>/dev/null); then
    break
  fi
  sleep 0.05
done
[ -n "$id" ] || { echo "could not enqueue"; cat "$work/serve.log"; exit 1; }
for _ in $(seq 1 300); do
  job=$("$bin" job --data-dir "$data" "$id" --json)
  case $job in *'"state":"completed"'*) break ;; esac
  sleep 0.05
done
echo "$job"
case $job in
  *'"result":{"words":3,"lines":1}'*) ;;
  *) echo "the job did not complete with its result"; cat "$work/serve.log"; exit 1 ;;
esac
kill -TERM "$pid"
wait "$pid"
pid=
echo "a project built against the installed forq ran its C++ handler"
