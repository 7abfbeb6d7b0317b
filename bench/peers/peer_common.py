"""Shared by celery_peer.py and rq_peer.py (run with /usr/bin/python3, Debian's modules).

The same as common.js: argument parsing, the job payload, the recorder that the worker
process's handler calls, and the driver that runs a workload around one worker process and
prints one JSON line. bench/peers/README.md describes what is measured.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import redis


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument("--workload", choices=["drain", "steady"], default="drain")
    p.add_argument("--jobs", type=int, default=100000)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--payload-bytes", type=int, default=100)
    a = p.parse_args(argv)
    if a.workload == "steady":
        a.jobs = round(a.rate * a.duration)
    if a.jobs < 1:
        p.error("no jobs to run")
    return a


def mono_us():
    """CLOCK_MONOTONIC in µs, the clock common.js and sidekiq_peer.rb use too."""
    return time.monotonic_ns() // 1000


def payload(seq, t, nbytes):
    """{"seq":N,"t":µs,"pad":"xx..."}, padded so that its JSON is nbytes long."""
    p = {"seq": seq, "t": t, "pad": ""}
    p["pad"] = "x" * max(0, nbytes - len(json.dumps(p, separators=(",", ":"))))
    return p


class Recorder:
    """The worker process's side: record(seq, t) once per run, all in this process's memory.
    When every job has run it writes the report file once; a progress file every 1,000 jobs
    lets the driver tell a stall."""

    def __init__(self):
        self.n = int(os.environ["BENCH_JOBS"])
        self.report = os.environ["BENCH_REPORT"]
        self.steady = os.environ.get("BENCH_WORKLOAD") == "steady"
        self.seen = bytearray(self.n)
        self.lat = [0] * self.n if self.steady else None
        self.runs = self.distinct = self.dups = self.bad = 0
        self.first_us = self.first_cpu_us = 0
        self.reported = False

    def record(self, seq, t):
        now = mono_us()
        self.runs += 1
        if self.runs == 1:
            self.first_us = now
            self.first_cpu_us = time.process_time_ns() // 1000
        if not 0 <= seq < self.n:
            self.bad += 1
            return
        if self.seen[seq]:
            self.dups += 1
            return
        self.seen[seq] = 1
        if self.lat is not None:
            self.lat[seq] = now - t
        self.distinct += 1
        if self.distinct % 1000 == 0:
            with open(self.report + ".progress", "w") as f:
                f.write(str(self.distinct))
        if self.distinct == self.n and not self.reported:
            self.reported = True
            r = {"runs": self.runs, "distinct": self.distinct, "dups": self.dups,
                 "bad": self.bad, "first_us": self.first_us, "done_us": now,
                 "first_cpu_us": self.first_cpu_us, "lat_us": self.lat or []}
            with open(self.report + ".tmp", "w") as f:
                json.dump(r, f)
            os.replace(self.report + ".tmp", self.report)


_recorder = None


def recorder():
    global _recorder
    if _recorder is None:
        _recorder = Recorder()
    return _recorder


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_tree_cpu_us(pid):
    """utime + stime of a process and its descendants (µs), from /proc/<pid>/stat."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) * 1e6 / CLK_TCK
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for kid in f.read().split():
                    total += proc_tree_cpu_us(int(kid))
    except (OSError, ValueError):
        pass
    return total


def redis_cpu_us(r):
    info = r.info("cpu")
    return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6


def wait_blocked(r, child, seconds):
    """Ready = some client of this Redis is blocked (the worker waiting for a job)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if child.poll() is not None:
            raise RuntimeError("the worker exited")
        clients = r.execute_command("CLIENT", "LIST")
        if isinstance(clients, bytes):
            clients = clients.decode()
        if re.search(r" flags=[A-Za-z]*b", clients):
            return
        time.sleep(0.02)
    raise RuntimeError(f"the worker was not waiting for jobs within {seconds} s")


def wait_report(report, child, n):
    last, last_change = "", time.monotonic()
    while True:
        if os.path.exists(report):
            with open(report) as f:
                return json.load(f)
        if child.poll() is not None:
            raise RuntimeError(f"the worker exited ({child.returncode})")
        time.sleep(0.005)
        try:
            with open(report + ".progress") as f:
                p = f.read()
        except OSError:
            p = ""
        if p != last:
            last, last_change = p, time.monotonic()
        elif time.monotonic() - last_change > 60:
            raise RuntimeError(f"stalled at {last or 0} of {n} jobs (no progress for 60 s)")


def pct(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def stop_worker(child):
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def drive(a, name, version, settings, worker_argv, make_producer, worker_env=None):
    """Runs the workload and prints one JSON line. make_producer() returns (enqueue, close):
    enqueue(list of payloads) adds them (in bulk where the peer can)."""
    r = redis.Redis(host="127.0.0.1", port=a.redis_port)
    tmp = tempfile.mkdtemp(prefix=f"forq-peer-{name}-")
    report = os.path.join(tmp, "report.json")
    log = os.path.join(tmp, "worker.log")
    env = dict(os.environ, BENCH_JOBS=str(a.jobs), BENCH_REPORT=report,
               BENCH_WORKLOAD=a.workload, BENCH_REDIS_PORT=str(a.redis_port),
               **(worker_env or {}))
    out = {"peer": name, "version": version, "settings": settings,
           "workload": a.workload, "jobs": a.jobs}
    child = None

    def start():
        with open(log, "ab") as f:
            return subprocess.Popen(worker_argv, env=env, stdin=subprocess.DEVNULL,
                                    stdout=f, stderr=subprocess.STDOUT)

    try:
        r.flushall()
        redis_version = r.info("server")["redis_version"]
        enqueue, close = make_producer()
        cpu0 = 0.0
        if a.workload == "drain":
            redis0 = redis_cpu_us(r)
            for i in range(0, a.jobs, 1000):
                enqueue([payload(s, 0, a.payload_bytes) for s in range(i, min(a.jobs, i + 1000))])
            t0 = mono_us()
            child = start()
            rep = wait_report(report, child, a.jobs)
        else:
            child = start()
            wait_blocked(r, child, 30)
            time.sleep(0.3)  # let start-up settle
            redis0 = redis_cpu_us(r)
            cpu0 = proc_tree_cpu_us(child.pid)
            t0 = mono_us()
            sent, nxt = 0, t0
            while sent < a.jobs:
                due = min(a.jobs, (mono_us() - t0) * a.rate // 1_000_000 + 1)
                batch = []
                while sent < due:
                    batch.append(payload(sent, mono_us(), a.payload_bytes))
                    sent += 1
                if batch:
                    enqueue(batch)
                nxt += 1000
                wait = nxt - mono_us()
                if wait > 0:
                    time.sleep(wait / 1e6)
                else:
                    nxt = mono_us()
            rep = wait_report(report, child, a.jobs)
        cpu1 = proc_tree_cpu_us(child.pid)
        redis1 = redis_cpu_us(r)
        close()
        seconds = (rep["done_us"] - t0) / 1e6
        lat = sorted(rep["lat_us"])
        steady = a.workload == "steady"
        out.update({
            "jobs_per_s": a.jobs / seconds,
            "worker_cpu_us_per_job": (cpu1 - cpu0) / a.jobs,
            "redis_cpu_us_per_job": (redis1 - redis0) / a.jobs,
            "pickup_p50_us": pct(lat, 0.5) if steady else None,
            "pickup_p99_us": pct(lat, 0.99) if steady else None,
            "completed": rep["distinct"],
            "verified": rep["distinct"] == a.jobs and rep["dups"] == 0 and rep["bad"] == 0
            and rep["runs"] == a.jobs,
            "duplicates": rep["dups"],
            "seconds": seconds,
            "startup_s": None if steady else (rep["first_us"] - t0) / 1e6,
            "startup_cpu_us": None if steady else rep["first_cpu_us"],
            "redis_version": redis_version,
        })
        stop_worker(child)
        shutil.rmtree(tmp, ignore_errors=True)
        code = 0
    except Exception as e:  # noqa: BLE001 - any failure becomes the JSON line's error
        if child is not None:
            stop_worker(child)
        try:
            with open(log, errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
        except OSError:
            tail = ""
        print(f"{name}: {e!r}\nworker log ({log}):\n{tail}", file=sys.stderr)
        out.update({"error": str(e), "verified": False})
        code = 1
    print(json.dumps(out), flush=True)
    return code
