#!/usr/bin/python3
"""What one refresh of the dashboard's overview (GET /v1/queues) costs Redis, with N queues.

  bench/overview_cost.py FORQ_BINARY [N ...]      (default: 10 1000)

For each N: a fresh redis-server on a free port, N queues as a worker leaves them once started
(ten priority streams and the doorbell, each with the group) with one job each; `forq serve`
(one worker) consuming none of them, each with a busy last hour by the minute; 20 refreshes of
every queue (GET /v1/queues), 20 of the first 100 queues' figures, and 20 of the page the
dashboard asks for (the first 100 with their last 60 minutes). Prints Redis's CPU (INFO cpu: user + sys, whole
process) and the commands' own time (INFO commandstats) per refresh, and the refresh's wall
time as the browser sees it.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import redis

from redis_probe import cpu, free_port

FORQ = sys.argv[1] if len(sys.argv) > 1 else "build/forq"
SIZES = [int(x) for x in sys.argv[2:]] or [10, 1000]
REFRESHES = 20
PAGE = 100  # queues a page of the overview (src/ui/app.js)


def command_usec(r):
    return sum(v["usec"] for k, v in r.info("commandstats").items())


def measure(n):
    d = tempfile.mkdtemp(prefix="forq-overview-")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", d],
                              stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    p = r.pipeline(transaction=False)
    for i in range(n):
        # A queue as a worker leaves it once it started (init_queue.lua): the ten priority
        # streams and the doorbell, each with the group, and one job waiting.
        q = "q%04d" % i
        for s in ["forq:{%s}:stream" % q, "forq:{%s}:wake" % q] + [
                "forq:{%s}:stream:p%d" % (q, k) for k in range(1, 10)]:
            p.xgroup_create(s, "workers", id="0", mkstream=True)
        p.hset("forq:{%s}:meta" % q, mapping={"schema": "3", "paused": "0"})
        p.xadd("forq:{%s}:stream" % q, {"handler": "noop", "payload": "{}"})
        p.sadd("forq:queues", q)
        # A busy hour by the minute, as workers leave it (minutes.lua): jobs done, attempts
        # failed and four latency buckets in each of the last 60 minutes (360 fields).
        now = int(time.time() // 60)
        hour = {}
        for m in range(now - 59, now + 1):
            hour.update({"%d:d" % m: 600, "%d:f" % m: 3, "%d:l1" % m: 300, "%d:l2" % m: 250,
                         "%d:l3" % m: 40, "%d:l6" % m: 10})
        p.hset("forq:{%s}:minutes" % q, mapping=hour)
        if i % 100 == 99:
            p.execute()
    p.execute()
    log = open(os.path.join(d, "serve.log"), "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    tree = subprocess.Popen([FORQ, "serve", "--redis", "redis://127.0.0.1:%d" % port, "--listen",
                             "127.0.0.1:0", "--workers", "1", "--queues", "idle",
                             "--data-dir", os.path.join(d, "data")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = None
    for _ in range(200):
        text = open(os.path.join(d, "serve.log")).read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m and "consuming" in text:
            base = "http://127.0.0.1:" + m.group(1)
            break
        time.sleep(0.05)
    urllib.request.urlopen(base + "/v1/queues", timeout=60).read()  # warm: scripts, connections
    time.sleep(1.5)  # let the idle worker's own commands settle
    idle_before, idle_usec = cpu(r), command_usec(r)
    time.sleep(2)
    idle_cpu = (cpu(r) - idle_before) / 2  # per second, nothing asked
    idle_cmd = (command_usec(r) - idle_usec) / 2
    for what, path in (("every queue", "/v1/queues"),
                       ("a page of figures", "/v1/queues?limit=%d" % PAGE),
                       ("the dashboard's page", "/v1/queues?limit=%d&minutes=60" % PAGE)):
        before, usec = cpu(r), command_usec(r)
        start = time.monotonic()
        for _ in range(REFRESHES):
            body = urllib.request.urlopen(base + path, timeout=60).read()
        wall = (time.monotonic() - start) / REFRESHES
        spent = (cpu(r) - before - idle_cpu * wall * REFRESHES) / REFRESHES
        cmd = (command_usec(r) - usec - idle_cmd * wall * REFRESHES) / REFRESHES
        print("%5d queues, %-22s: Redis CPU %.2f ms per refresh (commands' own time %.2f ms), "
              "refresh %.1f ms as the browser waits, answer %d bytes"
              % (n, what, spent * 1000, cmd / 1000, wall * 1000, len(body)))
    tree.terminate()
    tree.wait(20)
    server.terminate()
    server.wait(10)


for n in SIZES:
    measure(n)
