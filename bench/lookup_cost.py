#!/usr/bin/python3
"""What a job lookup through the HTTP API costs, two forq binaries side by side (docs/benchmarks.md,
"Looking a job up"): one redis-server with 500 ready jobs in queue `lk` (and 20 other queues),
each binary's `forq serve` in turn (3 rounds, alternated), 1,000 `GET /v1/jobs/{id}` per case:
by id in its queue, by id over every queue, an unknown id over every queue. Prints the median
time per request and Redis CPU per request (which includes the serving tree's own background).
    bench/lookup_cost.py OLD_FORQ NEW_FORQ
"""
import json, os, socket, subprocess, sys, time, urllib.request, statistics, shutil, tempfile
import redis
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
old, new = sys.argv[1], sys.argv[2]
port = free_port(); d = tempfile.mkdtemp()
rp = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
time.sleep(0.3)
r = redis.Redis(port=port, decode_responses=True)
r.xgroup_create("forq:{lk}:stream", "workers", "0", mkstream=True)
ids = [r.xadd("forq:{lk}:stream", {"handler": "echo", "payload": json.dumps({"i": i})}) for i in range(500)]
for q in range(20):  # other queues, for the every-queue search
    r.sadd("forq:queues", "q%d" % q); r.hset("forq:{q%d}:meta" % q, "schema", "3")
r.sadd("forq:queues", "lk"); r.hset("forq:{lk}:meta", "schema", "3")
def cpu():
    i = r.info("cpu"); return i["used_cpu_user"] + i["used_cpu_sys"]
res = {"old": [], "new": []}
for rnd in range(3):
    for name, binary in (("old", old), ("new", new)):
        hp = free_port()
        sp = subprocess.Popen([binary, "serve", "--redis", "redis://127.0.0.1:%d" % port, "--workers", "1", "--listen", "127.0.0.1:%d" % hp, "--queues", "other", "--data-dir", d + "/" + name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try: urllib.request.urlopen("http://127.0.0.1:%d/health" % hp); break
            except Exception: time.sleep(0.05)
        out = []
        for path in ["/v1/jobs/%s?queue=lk", "/v1/jobs/%s", "/v1/jobs/unknown-%s"]:
            c0, t0 = cpu(), time.perf_counter()
            for i in ids * 2:
                try: urllib.request.urlopen("http://127.0.0.1:%d" % hp + path % i).read()
                except urllib.error.HTTPError as e: assert e.code == 404
            n = len(ids) * 2
            out.append(((time.perf_counter() - t0) * 1e6 / n, (cpu() - c0) * 1e6 / n))
        res[name].append(out)
        sp.terminate(); sp.wait()
rp.terminate(); shutil.rmtree(d, ignore_errors=True)
labels = ["by id in its queue (ready)", "by id, every queue (21)", "unknown id, every queue"]
print("| lookup | old µs/request | new | old Redis CPU µs | new |")
print("|---|---:|---:|---:|---:|")
for k, lab in enumerate(labels):
    m = lambda name, j: statistics.median(x[k][j] for x in res[name])
    print("| %s | %.0f | %.0f | %.1f | %.1f |" % (lab, m("old", 0), m("new", 0), m("old", 1), m("new", 1)))
