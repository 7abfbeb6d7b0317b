"""forq.Client and forq.asyncio.Client against a real Redis and a real `forq serve`
(tests/clients/clients_test.py starts both): FORQ_TEST_REDIS is the URL, FORQ_TEST_QUEUE the
queue that `forq serve` consumes (built-in handlers echo, sleep, fail) and FORQ_TEST_IDLE one
it does not. Skipped without FORQ_TEST_REDIS (the vectors need no Redis: test_vectors.py)."""
import asyncio
import datetime as dt
import os
import sys
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import forq  # noqa: E402
import forq.asyncio  # noqa: E402

URL = os.environ.get("FORQ_TEST_REDIS")
QUEUE = os.environ.get("FORQ_TEST_QUEUE", "py")
IDLE = os.environ.get("FORQ_TEST_IDLE", "py-idle")


def fresh(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


@unittest.skipUnless(URL, "FORQ_TEST_REDIS not set")
class Sync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = forq.Client(URL)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_plain_job_runs_and_wait_returns_its_result(self):
        job = self.c.enqueue_and_wait(QUEUE, "echo", {"n": 1, "text": "caf\u00e9"}, timeout=20)
        self.assertEqual(job.state, "completed")
        self.assertEqual(job.result, {"n": 1, "text": "caf\u00e9"})
        self.assertEqual(job.attempts, 1)

    def test_priority_delayed_unique_and_bulk(self):
        p = self.c.enqueue(QUEUE, "echo", {"p": 7}, priority=7, waitable=True)
        self.assertTrue(p.id.endswith("-p7"), p.id)
        start = time.time()
        d = self.c.enqueue(QUEUE, "echo", {"d": 1}, delay=dt.timedelta(milliseconds=600),
                           waitable=True)
        self.assertRegex(d.id, r"^\d+-d\d+$")
        uid = fresh("order")
        u1 = self.c.enqueue(QUEUE, "echo", {"u": 1}, id=uid, waitable=True)
        u2 = self.c.enqueue(QUEUE, "echo", {"u": 2}, id=uid)
        self.assertEqual((u1, u2), (forq.Enqueued(uid, False), forq.Enqueued(uid, True)))
        many = self.c.enqueue_many(QUEUE, [{"handler": "echo", "payload": {"i": i},
                                            "waitable": True} for i in range(50)] +
                                   [{"handler": "bad handler", "payload": 1}])
        self.assertIsInstance(many[-1], forq.InvalidJob)
        self.assertIn('handler "bad handler" is not allowed', str(many[-1]))
        for e, j in [(p, {"p": 7}), (u1, {"u": 1})] + [
                (many[i], {"i": i}) for i in range(50)]:
            done = self.c.wait(QUEUE, e.id, timeout=20)
            self.assertEqual((done.state, done.result), ("completed", j), e.id)
        done = self.c.wait(QUEUE, d.id, timeout=20)
        self.assertEqual((done.state, done.result), ("completed", {"d": 1}))
        self.assertGreaterEqual(time.time() - start, 0.5)

    def test_a_bulk_keeps_its_order_in_the_stream(self):
        q = fresh("order")
        many = self.c.enqueue_many(q, [{"handler": "echo", "payload": 1},
                                       {"handler": "echo", "payload": 2, "id": fresh("u")},
                                       {"handler": "echo", "payload": 3, "priority": 2},
                                       {"payload": 4}, {"handler": "echo", "payload": 5,
                                                        "id": fresh("u")}])
        payloads = [f["payload"] for _, f in self.c.redis.xrange("forq:{%s}:stream" % q)]
        self.assertEqual(payloads, ["1", "2", "4", "5"])
        self.assertTrue(many[2].id.endswith("-p2"))

    def test_a_job_not_waitable_is_waited_for_by_looking_again(self):
        e = self.c.enqueue(QUEUE, "sleep", {"ms": 300})  # its end is not announced
        t0 = time.monotonic()
        job = self.c.wait(QUEUE, e.id, timeout=20)
        self.assertEqual(job.state, "completed")
        self.assertLess(time.monotonic() - t0, 5)

    def test_a_delayed_job_is_delayed_until_due(self):
        d = self.c.enqueue(IDLE, "echo", 1, delay=60_000, priority=2, attempts=3)
        job = self.c.get_job(IDLE, d.id)
        self.assertEqual((job.state, job.priority, job.max_attempts, job.payload),
                         ("delayed", 2, 3, 1))
        self.assertAlmostEqual(job.run_at_ms, time.time() * 1000 + 60_000, delta=5000)

    def test_dead_job_and_wait_timeout(self):
        e = self.c.enqueue(QUEUE, "fail", {"times": 5}, attempts=1, waitable=True)
        job = self.c.wait(QUEUE, e.id, timeout=20)
        self.assertEqual(job.state, "dead")
        self.assertIn("failed 1 time", job.reason)
        s = self.c.enqueue(QUEUE, "sleep", {"ms": 3000}, waitable=True)
        t0 = time.monotonic()
        job = self.c.wait(QUEUE, s.id, timeout=0.3)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertFalse(job.terminal)
        self.assertIn(job.state, ("ready", "active"))

    def test_cancel_a_running_job_and_a_waiting_one(self):
        s = self.c.enqueue(QUEUE, "sleep", {"ms": 30000}, waitable=True)
        deadline = time.monotonic() + 10
        while self.c.get_job(QUEUE, s.id).state != "active":
            self.assertLess(time.monotonic(), deadline, "never started")
            time.sleep(0.05)
        r = self.c.cancel(QUEUE, s.id, by="python-test", reason="not needed")
        self.assertEqual(r.outcome, "requested")
        t0 = time.monotonic()
        job = self.c.wait(QUEUE, s.id, timeout=10)
        self.assertEqual((job.state, job.cancelled_by, job.cancel_reason),
                         ("cancelled", "python-test", "not needed"))
        self.assertLess(time.monotonic() - t0, 5)
        d = self.c.enqueue(IDLE, "echo", 1, delay=60_000)
        self.assertEqual(self.c.cancel(IDLE, d.id).outcome, "cancelled")
        ready = self.c.enqueue(IDLE, "echo", {"r": 1}, priority=3)
        before = self.c.counts(IDLE)
        r = self.c.cancel(IDLE, ready.id)
        self.assertEqual((r.outcome, r.job.state), ("cancelled", "cancelled"))
        after = self.c.counts(IDLE)
        self.assertEqual(after["ready"], before["ready"] - 1)
        self.assertEqual(self.c.cancel(IDLE, ready.id).outcome, "terminal")
        self.assertIsNone(self.c.cancel(IDLE, "no-such-job"))

    def test_counts_pause_resume(self):
        q = fresh("counts")
        self.c.enqueue_many(q, [{"handler": "echo", "payload": i} for i in range(3)])
        self.c.enqueue(q, "echo", 1, delay=60_000)
        c = self.c.counts(q)
        self.assertEqual((c["ready"], c["active"], c["delayed"], c["paused"]), (3, 0, 1, False))
        self.c.pause(q)
        self.assertTrue(self.c.counts(q)["paused"])
        self.c.resume(q)
        self.assertFalse(self.c.counts(q)["paused"])

    def test_unknown_job_and_bad_input(self):
        self.assertIsNone(self.c.get_job(QUEUE, "never-enqueued"))
        self.assertIsNone(self.c.wait(QUEUE, "never-enqueued", timeout=0.1))
        with self.assertRaisesRegex(forq.InvalidJob, r'^queue name "a b" is not allowed'):
            self.c.enqueue("a b", "echo", 1)
        with self.assertRaisesRegex(forq.InvalidJob, r"^priority 12 is not allowed"):
            self.c.enqueue(QUEUE, "echo", 1, priority=12)

    def test_schema_of_another_release_is_refused(self):
        q = fresh("schema")
        self.c.redis.hset("forq:{%s}:meta" % q, "schema", "99")
        with self.assertRaisesRegex(forq.SchemaMismatch, "schema 99; this client speaks 3"):
            self.c.enqueue(q, "echo", 1)
        self.assertEqual(self.c.redis.xlen("forq:{%s}:stream" % q), 0)

    def test_a_redis_client_of_your_own_even_one_that_does_not_decode(self):
        import redis
        own = redis.Redis.from_url(URL)  # replies as bytes
        with forq.Client(own) as c:
            job = c.enqueue_and_wait(QUEUE, "echo", {"own": "\u00e9"}, timeout=20)
            self.assertEqual((job.state, job.result), ("completed", {"own": "\u00e9"}))
            self.assertEqual(c.counts(QUEUE)["queue"], QUEUE)
        self.assertTrue(own.ping())  # not closed: it is the caller's

    def test_events_on_writes_added(self):
        q = fresh("events")
        self.c.redis.hset("forq:{%s}:meta" % q, "events", "1000")
        e = self.c.enqueue(q, "echo", 1)
        u = self.c.enqueue(q, "echo", 1, id=fresh("u"))
        events = self.c.redis.xrange("forq:{%s}:events" % q)
        self.assertEqual([f for _, f in events], [{"event": "added", "id": e.id},
                                                  {"event": "added", "id": u.id}])
        self.c.redis.script_flush()  # a Redis that lost its scripts: loaded again
        many = self.c.enqueue_many(q, [{"handler": "echo", "payload": 2}] * 3)
        self.assertTrue(all(isinstance(m, forq.Enqueued) for m in many), many)
        self.assertEqual(len(self.c.redis.xrange("forq:{%s}:events" % q)), 5)


@unittest.skipUnless(URL, "FORQ_TEST_REDIS not set")
class Async(unittest.IsolatedAsyncioTestCase):
    async def test_the_same_operations_on_asyncio(self):
        async with forq.asyncio.Client(URL) as c:
            job = await c.enqueue_and_wait(QUEUE, "echo", {"a": 1}, timeout=20)
            self.assertEqual((job.state, job.result), ("completed", {"a": 1}))
            many = await c.enqueue_many(QUEUE, [{"handler": "echo", "payload": i,
                                                 "waitable": True} for i in range(20)])
            done = await asyncio.gather(*(c.wait(QUEUE, m.id, timeout=20) for m in many))
            self.assertEqual([d.result for d in done], list(range(20)))
            s = await c.enqueue(QUEUE, "sleep", {"ms": 30000}, waitable=True)
            for _ in range(200):
                if (await c.get_job(QUEUE, s.id)).state == "active":
                    break
                await asyncio.sleep(0.05)
            self.assertEqual((await c.cancel(QUEUE, s.id)).outcome, "requested")
            self.assertEqual((await c.wait(QUEUE, s.id, timeout=10)).state, "cancelled")
            counts = await c.counts(IDLE)
            self.assertIn("ready", counts)
            with self.assertRaises(forq.InvalidJob):
                await c.enqueue(QUEUE, "echo", 1, id="1-0")


if __name__ == "__main__":
    unittest.main()
