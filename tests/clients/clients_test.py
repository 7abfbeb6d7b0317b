#!/usr/bin/python3
"""The Node and Python clients (clients/) against real Redis servers and a real `forq serve`
(docs/clients.md), run by ctest as clients_cross_language:

  one Redis: each client's own suite (the conformance vectors, then enqueue of plain, delayed,
    prioritised, unique and bulk jobs that forq runs, wait, cancel, counts, pause, schemas,
    events) for Python sync and asyncio and for Node; jobs enqueued from Node waited for and
    cancelled from Python and the reverse; each job state as both clients show it equal to
    `forq job --json`; bad input refused in the words of `forq enqueue`; the packages installed
    as a user installs them (pip into a venv, npm from the packed tarball) and used;
  a loopback Redis Cluster (3 primaries) and a primary watched by a sentinel: both clients
    enqueue through redis-cluster:// and redis-sentinel:// URLs, forq runs the jobs, both wait.

Run: clients_test.py FORQ_BINARY. Needs redis-server, node with clients/node/node_modules
(scripts/test.sh runs `npm ci` there) and Debian's python3-redis and python3-venv.
"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import forq  # noqa: E402
import forq.asyncio  # noqa: E402
import redis  # noqa: E402

FORQ = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/forq")
NODE_TOOL = os.path.join(ROOT, "tests", "clients", "node_tool.js")
NODE_DIR = os.path.join(ROOT, "clients", "node")
PY_DIR = os.path.join(ROOT, "clients", "python")
TMP = tempfile.mkdtemp(prefix="forq-clients-")
PROCS = []
LOGS = []


def free_port(below=65536):
    """A free port; below 55536 for a cluster node (its bus is the port + 10000, also free)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= below:
            continue
        if below == 65536:
            return port
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


def clean_env():
    """This environment without FORQ_ variables (forq would read them, and warn of others)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}


def start(args, name, cwd=TMP):
    log = open(os.path.join(TMP, name + ".log"), "w")
    LOGS.append(log)
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=clean_env())
    PROCS.append(p)
    return p


def wait_until(what, check, limit=20.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def redis_server(*extra):
    port = free_port(55536 if "--cluster-enabled" in extra else 65536)
    d = os.path.join(TMP, "r%d" % port)
    os.makedirs(d)
    start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", d, *extra], "redis-%d" % port)
    wait_until("redis on %d" % port, lambda: redis.Redis(port=port).ping())
    return port


def serve(url, queues, name):
    start([FORQ, "serve", "--redis", url, "--workers", "1", "--listen", "127.0.0.1:0",
           "--queues", queues, "--data-dir", os.path.join(TMP, name)], name)


def node(*args, env=None):
    r = subprocess.run(["node", NODE_TOOL, *args], capture_output=True, text=True, timeout=60,
                       env=env)
    if r.returncode != 0:
        raise AssertionError("node_tool %s: %s" % (args[1], r.stderr))
    return json.loads(r.stdout)


def registered(url_client, queue):
    return lambda: queue in url_client.smembers("forq:queues")


class OneRedis(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = redis_server()
        cls.url = "redis://127.0.0.1:%d" % cls.port
        cls.c = forq.Client(cls.url)
        serve(cls.url, "py,node,x", "serve")
        wait_until("forq serve's queues", registered(cls.c.redis, "x"))

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def suite_env(self, queue):
        env = dict(os.environ, FORQ_TEST_REDIS=self.url, FORQ_TEST_QUEUE=queue,
                   FORQ_TEST_IDLE=queue + "-idle")
        return env

    def test_python_suite(self):
        r = subprocess.run([sys.executable, "-m", "unittest", "-v", "tests.test_vectors",
                            "tests.test_live"], cwd=PY_DIR, env=self.suite_env("py"),
                           capture_output=True, text=True, timeout=180)
        sys.stderr.write(r.stderr[-3000:])
        self.assertEqual(r.returncode, 0, r.stderr[-5000:])
        self.assertNotIn("skipped", r.stderr)  # the live tests ran, not skipped
        self.assertRegex(r.stderr, r"Ran 1[0-9] tests")

    def test_node_suite(self):
        r = subprocess.run(["node", "--test", "test/"], cwd=NODE_DIR,
                           env=self.suite_env("node"), capture_output=True, text=True,
                           timeout=180)
        sys.stderr.write(r.stdout[-1500:])
        self.assertEqual(r.returncode, 0, r.stdout[-5000:] + r.stderr[-2000:])
        self.assertRegex(r.stdout, r"# pass 1[0-9]\b")
        self.assertRegex(r.stdout, r"# skipped 0\b")

    def test_across_languages(self):
        # Python enqueues, Node waits.
        ids = [self.c.enqueue("x", "echo", {"from": "python", "i": i}, waitable=True).id
               for i in range(3)]
        for i, id_ in enumerate(ids):
            job = node(self.url, "wait", "x", id_, "20000")
            self.assertEqual((job["state"], job["result"]),
                             ("completed", {"from": "python", "i": i}))
        # Node enqueues (plain, unique, delayed, priority), Python waits.
        out = node(self.url, "enqueue", "x", json.dumps([
            {"handler": "echo", "payload": {"from": "node"}, "waitable": True},
            {"handler": "echo", "payload": {"u": 1}, "id": "node:unique:1", "waitable": True},
            {"handler": "echo", "payload": {"d": 1}, "delayMs": 300, "waitable": True},
            {"handler": "echo", "payload": {"p": 9}, "priority": 9, "waitable": True}]))
        want = [{"from": "node"}, {"u": 1}, {"d": 1}, {"p": 9}]
        for o, w in zip(out, want):
            job = self.c.wait("x", o["id"], timeout=20)
            self.assertEqual((job.state, job.result), ("completed", w), o)
        # Cancel across: Node enqueues a long job, Python cancels it while it runs, Node's wait
        # sees it end; then the reverse.
        sid = node(self.url, "enqueue", "x", json.dumps(
            [{"handler": "sleep", "payload": {"ms": 30000}, "waitable": True}]))[0]["id"]
        wait_until("the job to start", lambda: self.c.get_job("x", sid).state == "active")
        self.assertEqual(self.c.cancel("x", sid, by="python", reason="r1").outcome, "requested")
        job = node(self.url, "wait", "x", sid, "10000")
        self.assertEqual((job["state"], job["cancelled_by"]), ("cancelled", "python"))
        sid = self.c.enqueue("x", "sleep", {"ms": 30000}, waitable=True).id
        wait_until("the job to start", lambda: self.c.get_job("x", sid).state == "active")
        self.assertEqual(node(self.url, "cancel", "x", sid, "node", "r2")["outcome"],
                         "requested")
        job = self.c.wait("x", sid, timeout=10)
        self.assertEqual((job.state, job.cancelled_by, job.cancel_reason),
                         ("cancelled", "node", "r2"))

    def test_a_job_as_both_clients_and_forq_job_show_it(self):
        c, q = self.c, "x"
        ids = [c.enqueue_and_wait(q, "echo", {"a": [1, 2], "s": "\u00fcber"}).id,
               c.enqueue_and_wait(q, "noop", {}).id]
        e = c.enqueue(q, "fail", {"times": 3}, attempts=1, waitable=True)
        c.wait(q, e.id)
        ids.append(e.id)
        e = c.enqueue(q, "fail", {"times": 1}, retry="3/fixed/10ms", waitable=True)
        c.wait(q, e.id)
        ids.append(e.id)
        ids.append(c.enqueue("x-idle", "echo", {"x": 1}, priority=3, attempts=4,
                             retry="5/fixed/1s").id)
        ids.append(c.enqueue("x-idle", "echo", {"x": 2}, delay=50_000, id="a:b c").id)
        r = c.enqueue("x-idle", "echo", {"x": 3}, waitable=True)
        c.cancel("x-idle", r.id, by="ops", reason="why")
        ids.append(r.id)
        s = c.enqueue(q, "sleep", {"ms": 5000}).id
        wait_until("the job to start", lambda: c.get_job(q, s).state == "active")
        c.cancel(q, s, by="ops")  # active with a cancel asked for: maybe not yet heard
        ids.append(s)
        states = set()
        for id_ in ids:
            queue = "x-idle" if id_ in ids[4:7] else q
            cli = subprocess.run([FORQ, "job", "--redis", self.url, "--queue", queue, "--json",
                                  id_], capture_output=True, text=True, timeout=30,
                                 env=clean_env())
            self.assertEqual(cli.returncode, 0, cli.stderr)
            want = json.loads(cli.stdout)
            py = c.get_job(queue, id_).to_dict()
            js = node(self.url, "get", queue, id_)
            if want["state"] != py["state"] or want["state"] != js["state"]:
                continue  # the sleeping job's cancel landed between two looks: look again
            self.assertEqual(py, want, id_)
            self.assertEqual(js, want, id_)
            states.add(want["state"])
        self.assertGreaterEqual(states, {"completed", "dead", "ready", "delayed", "cancelled"})

    def test_an_entry_of_the_same_id_in_another_stream_is_not_the_job(self):
        """Entry ids are per stream: the job with caller id "same:1" runs from entry E of the
        priority-5 stream, and another job has entry E in the priority-0 stream, looked at
        first. Every reader finds the right one."""
        q = "same-entry"
        e = self.c.enqueue(q, "echo", {"right": 1}, id="same:1", priority=5)
        entry = self.c.redis.get("forq:{%s}:unique:same:1" % q)
        self.c.redis.xadd("forq:{%s}:stream" % q, {"handler": "echo", "payload": "{}"}, id=entry)
        want = {"queue": q, "id": e.id, "state": "ready", "handler": "echo",
                "payload": {"right": 1}, "attempts": 0, "priority": 5}
        self.assertEqual(self.c.get_job(q, e.id).to_dict(), want)
        self.assertEqual(node(self.url, "get", q, e.id), want)
        cli = subprocess.run([FORQ, "job", "--redis", self.url, "--queue", q, "--json", e.id],
                             capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(json.loads(cli.stdout), want, cli.stderr)

    def test_bad_input_is_refused_in_the_words_of_forq_enqueue(self):
        cases = [("bad queue", "echo", None), ("x", "x/y", None), ("x", "echo", "1-0"),
                 ("x", "echo", "a\tb"), ("x", "echo", ""), ("x", "echo", "\u00e9" * 200)]
        for queue, handler, id_ in cases:
            args = [FORQ, "enqueue", "--redis", self.url, "--queue", queue, "--handler", handler]
            if id_ is not None:
                args += ["--id", id_]
            cli = subprocess.run(args + ["{}"], capture_output=True, text=True, timeout=30,
                                 env=clean_env())
            self.assertNotEqual(cli.returncode, 0)
            words = cli.stderr.strip().splitlines()[0].removeprefix("forq: ")
            with self.assertRaises(forq.InvalidJob) as e:
                self.c.enqueue(queue, handler, {}, id=id_)
            self.assertEqual(str(e.exception), words)
            r = subprocess.run(["node", NODE_TOOL, self.url, "enqueue", queue, json.dumps(
                [{"handler": handler, "payload": {}, "id": id_}])], capture_output=True,
                text=True, timeout=30)
            if queue == "bad queue":  # the whole call is refused
                self.assertEqual(r.stderr.strip(), "InvalidJob: " + words)
            else:  # that job is
                self.assertEqual(json.loads(r.stdout)[0]["error"], words)
        self.assertFalse(self.c.redis.exists("forq:{bad queue}:stream"))

    def test_the_packages_install_as_a_user_installs_them(self):
        venv = os.path.join(TMP, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True,
                       timeout=120)
        build = os.path.join(TMP, "pybuild")
        shutil.copytree(PY_DIR, build, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                     "__pycache__"))
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--no-index",
                        "--no-build-isolation", "--no-deps", build], check=True, timeout=180)
        code = ("import forq, forq.asyncio, sys; c = forq.Client(sys.argv[1]); "
                "j = c.enqueue_and_wait('x', 'echo', {'installed': 1}); print(j.result)")
        r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code, self.url],
                           capture_output=True, text=True, timeout=60, cwd=TMP)
        self.assertEqual(r.stdout.strip(), "{'installed': 1}", r.stderr)
        pack = os.path.join(TMP, "pack")
        os.makedirs(pack)
        r = subprocess.run(["npm", "pack", "--silent", "--pack-destination", pack, NODE_DIR],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        tarball = os.path.join(pack, r.stdout.strip().splitlines()[-1])
        app = os.path.join(TMP, "app")
        os.makedirs(app)
        with open(os.path.join(app, "package.json"), "w") as f:
            f.write('{"name": "app", "version": "1.0.0", "private": true}')
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline",
                            tarball], cwd=app, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        code = ("const {Client} = require('@forq/client'); const c = new Client(process.argv[1]);"
                "c.enqueueAndWait('x', {handler: 'echo', payload: {installed: 2}})"
                ".then((j) => { console.log(JSON.stringify(j.result)); return c.close(); })")
        r = subprocess.run(["node", "-e", code, self.url], cwd=app, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.stdout.strip(), '{"installed":2}', r.stderr)


def both_clients_run_jobs_through(test, url, queue):
    """Each client enqueues a plain, a prioritised, a unique and a delayed job through `url`;
    forq (serving `queue` on the same URL) runs them; each client waits for the other's."""
    with forq.Client(url) as c:
        py = c.enqueue_many(queue, [
            {"handler": "echo", "payload": {"py": 0}, "waitable": True},
            {"handler": "echo", "payload": {"py": 1}, "priority": 5, "waitable": True},
            {"handler": "echo", "payload": {"py": 2}, "id": "py:u", "waitable": True},
            {"handler": "echo", "payload": {"py": 3}, "delay": 200, "waitable": True}])
        js = node(url, "enqueue", queue, json.dumps([
            {"handler": "echo", "payload": {"js": 0}, "waitable": True},
            {"handler": "echo", "payload": {"js": 1}, "priority": 5, "waitable": True},
            {"handler": "echo", "payload": {"js": 2}, "id": "js:u", "waitable": True},
            {"handler": "echo", "payload": {"js": 3}, "delayMs": 200, "waitable": True}]))
        for i, o in enumerate(js):
            job = c.wait(queue, o["id"], timeout=20)
            test.assertEqual((job.state, job.result), ("completed", {"js": i}), o)
        for i, e in enumerate(py):
            job = node(url, "wait", queue, e.id, "20000")
            test.assertEqual((job["state"], job["result"]), ("completed", {"py": i}), e)

    async def on_asyncio():  # forq.asyncio.Client through the same URL
        async with forq.asyncio.Client(url) as c:
            many = await c.enqueue_many(queue, [{"handler": "echo", "payload": {"a": i},
                                                 "priority": i, "waitable": True}
                                                for i in range(3)])
            return [await c.wait(queue, m.id, timeout=20) for m in many]
    test.assertEqual([(j.state, j.result) for j in asyncio.run(on_asyncio())],
                     [("completed", {"a": i}) for i in range(3)])


class RedisRestart(unittest.TestCase):
    def test_waits_ride_out_a_redis_restart(self):
        """Each client waits for the other's running job while Redis (append-only file, fsync
        always) is shut down and started again on the same port: both waits end completed."""
        port = free_port()
        d = os.path.join(TMP, "restart")
        os.makedirs(d)
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--dir", d]
        first = start(args, "redis-restart-1")
        wait_until("redis", lambda: redis.Redis(port=port).ping())
        url = "redis://127.0.0.1:%d" % port
        serve(url, "rs", "serve-restart")
        with forq.Client(url) as c:
            wait_until("forq serve's queue", registered(c.redis, "rs"))
            py_id = c.enqueue("rs", "sleep", {"ms": 2500}, waitable=True).id
            js_id = node(url, "enqueue", "rs", json.dumps(
                [{"handler": "sleep", "payload": {"ms": 2500}, "waitable": True}]))[0]["id"]
            wait_until("both jobs running", lambda: all(
                c.get_job("rs", i).state == "active" for i in (py_id, js_id)))
            js_wait = subprocess.Popen(["node", NODE_TOOL, url, "wait", "rs", py_id, "30000"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            outcome = {}

            def py_wait():
                try:
                    outcome["job"] = c.wait("rs", js_id, timeout=30)
                except Exception as e:  # noqa: BLE001 (said below)
                    outcome["error"] = e
            import threading
            waiter = threading.Thread(target=py_wait)
            waiter.start()
            time.sleep(0.5)
            redis.Redis(port=port).shutdown(nosave=False)
            first.wait(timeout=10)
            time.sleep(0.5)  # down for a moment: every connection to it is refused
            start(args, "redis-restart-2")
            wait_until("redis again", lambda: redis.Redis(port=port).ping())
            waiter.join(timeout=40)
            self.assertNotIn("error", outcome)
            self.assertEqual(outcome["job"].state, "completed")
            out, err = js_wait.communicate(timeout=40)
            self.assertEqual(js_wait.returncode, 0, err)
            self.assertEqual(json.loads(out)["state"], "completed")


class Cluster(unittest.TestCase):
    def test_both_clients_through_a_cluster_url(self):
        ports = [redis_server("--cluster-enabled", "yes", "--cluster-config-file",
                              "nodes-%d.conf" % i, "--cluster-node-timeout", "2000")
                 for i in range(3)]
        subprocess.run(["redis-cli", "--cluster", "create",
                        *["127.0.0.1:%d" % p for p in ports], "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        for p in ports:
            wait_until("cluster state ok", lambda p=p: redis.Redis(port=p).execute_command(
                "CLUSTER INFO").get("cluster_state") == "ok")
        url = "redis-cluster://" + ",".join("127.0.0.1:%d" % p for p in ports[:2])
        serve(url, "cq", "serve-cluster")
        with forq.Client(url) as c:
            wait_until("forq serve on the cluster", registered(c.redis, "cq"))
        both_clients_run_jobs_through(self, url, "cq")


class Sentinel(unittest.TestCase):
    def test_both_clients_through_a_sentinel_url(self):
        primary = redis_server()
        sport = free_port()
        conf = os.path.join(TMP, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 %d 1\n"
                    % (sport, primary))
        start(["redis-server", conf, "--sentinel"], "sentinel")
        wait_until("the sentinel", lambda: redis.Redis(port=sport).execute_command(
            "SENTINEL", "get-master-addr-by-name", "main"))
        url = "redis-sentinel://127.0.0.1:%d/main" % sport
        serve(url, "sq", "serve-sentinel")
        wait_until("forq serve via the sentinel",
                   registered(redis.Redis(port=primary, decode_responses=True), "sq"))
        both_clients_run_jobs_through(self, url, "sq")


if __name__ == "__main__":
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")):
        sys.exit("clients/node/node_modules is missing: scripts/test.sh installs it "
                 "(npm ci in clients/node)")
    try:
        unittest.main(argv=sys.argv[:1], verbosity=2)
    finally:
        for p in PROCS:
            p.terminate()
        for p in PROCS:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in LOGS:
            log.close()
        if os.environ.get("CLIENTS_TEST_KEEP_TMP"):
            print("kept", TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
