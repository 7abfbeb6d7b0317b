#!/usr/bin/python3
"""What Redis itself, and with FLOOR a minimal worker, spend per round trip at a low, steady
rate: the floors under issue 16's "Redis and worker <= 20 us of CPU per job at 1,000 jobs/s".

  bench/round_trip_floor.py [RATE] [SECONDS] [RUNS] [FLOOR]    (default: 1000 10 3)

A fresh redis-server (the one on PATH, no persistence) on a free port, and for each pattern,
RUNS runs of SECONDS at RATE a second, paced by the clock (not back to back):
  ping         one client, one PING a tick: one request, one reply.
  xadd         one client, one XADD a tick (a producer's enqueue, nothing consuming).
  job          the least a stream queue can do for one job: a producer's XADD, a consumer
               blocked in XREADGROUP woken by it, and that consumer's XACK sent together with its
               next blocking XREADGROUP (one write): two requests Redis reads per job.
  job+ack      as forq does it today: the XACK goes on a connection of its own with the job's
               result (RPUSH, two HINCRBY), so Redis reads three requests per job.
  worker, worker/epoll
               with FLOOR, the path of forq_worker_floor (built in build/bench): the "job"
               pattern's consumer written in C++ with plain sockets, nothing of forq in it,
               reading with blocking recv() or, as an event loop would, epoll_wait() first.
               Also prints the CPU that process used per job: the least a worker spends.
Prints Redis's CPU (INFO cpu: user + sys, whole process, its own timers included) per tick
in microseconds, the median of the runs, and each run's figure.
"""
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

from redis_probe import cpu, free_port

RATE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 10
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
FLOOR = sys.argv[4] if len(sys.argv) > 4 else None


def paced(body):
    """Calls body(i) RATE times a second for SECONDS; returns how many it made."""
    n = int(RATE * SECONDS)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / RATE
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        body(i)
    return n


def consumer(port, stream, with_own_ack, stop):
    r = redis.Redis(port=port)
    acker = redis.Redis(port=port)
    got = r.xreadgroup("g", "c", {stream: ">"}, count=1, block=0)
    while not stop.is_set():
        ids = [e[0] for _, entries in got for e in entries]
        if with_own_ack:
            p = acker.pipeline(transaction=False)
            p.rpush(stream + ":results", "done")
            p.xack(stream, "g", *ids)
            p.hincrby(stream + ":stats", "completed", 1)
            p.hincrby(stream + ":stats", "done", 1)
            p.execute()
            got = r.xreadgroup("g", "c", {stream: ">"}, count=1, block=0)
        else:
            p = r.pipeline(transaction=False)
            p.xack(stream, "g", *ids)
            p.xreadgroup("g", "c", {stream: ">"}, count=1, block=0)
            got = p.execute()[1]


def one_run(port, pattern):
    """Redis's CPU per tick, and the C++ consumer's per job (None for the others)."""
    r = redis.Redis(port=port)
    r.flushall()
    stream = "s"
    stop = threading.Event()
    t = None
    floor = None
    if pattern.startswith("worker"):
        r.xgroup_create(stream, "g", id="$", mkstream=True)
        mode = "epoll" if pattern.endswith("epoll") else "blocking"
        floor = subprocess.Popen([FLOOR, str(port), stream, "g", str(int(RATE * SECONDS)), mode],
                                 stdout=subprocess.PIPE, text=True)
        if floor.stdout.readline().strip() != "ready":
            raise SystemExit("forq_worker_floor did not start")
        time.sleep(0.2)
    if pattern.startswith("job"):
        r.xgroup_create(stream, "g", id="$", mkstream=True)
        t = threading.Thread(target=consumer, args=(port, stream, pattern == "job+ack", stop),
                             daemon=True)
        t.start()
        time.sleep(0.2)
    producer = redis.Redis(port=port)
    before = cpu(r)
    if pattern == "ping":
        n = paced(lambda i: producer.ping())
    else:
        n = paced(lambda i: producer.xadd(stream, {"n": i}, maxlen=10000, approximate=True))
    time.sleep(0.05)
    used = cpu(r) - before
    stop.set()
    if t:
        producer.xadd(stream, {"n": "last"})  # wakes the consumer to see stop
        t.join(5)
    worker = None
    if floor:
        out, _ = floor.communicate(timeout=30)
        if floor.returncode != 0:
            raise SystemExit("forq_worker_floor failed")
        worker = float(out.split()[-1])
    return used / n * 1e6, worker


def main():
    port = free_port()
    d = tempfile.mkdtemp(prefix="forq-floor-")
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--dir", d],
                              stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        print(f"Redis {r.info('server')['redis_version']}, {RATE}/s for {SECONDS:g} s, "
              f"{RUNS} runs each: Redis CPU per tick (us)")
        patterns = ["ping", "xadd", "job", "job+ack"]
        if FLOOR:
            patterns += ["worker", "worker/epoll"]
        for pattern in patterns:
            runs = [one_run(port, pattern) for _ in range(RUNS)]
            redis_cpu = [x for x, _ in runs]
            print(f"  {pattern:12} median {statistics.median(redis_cpu):6.1f}   runs "
                  + " ".join(f"{x:.1f}" for x in redis_cpu))
            if FLOOR and runs[0][1] is not None:
                worker = [w for _, w in runs]
                print(f"  {'':12} the worker's CPU per job (us): median "
                      f"{statistics.median(worker):.1f}   runs "
                      + " ".join(f"{w:.1f}" for w in worker))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
