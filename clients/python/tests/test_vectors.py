"""The conformance vectors (src/protocol/vectors.json, the package's copy) against this client:
every job is refused in exactly the vector's words or becomes exactly its call. No Redis."""
import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import forq  # noqa: E402
from forq import _core  # noqa: E402

VECTORS = json.loads((Path(_core.__file__).parent / "protocol" / "vectors.json").read_text())


def options(job):
    o = dict(job)
    if "delay_ms" in o:
        o["delay"] = o.pop("delay_ms")
    return o


class Vectors(unittest.TestCase):
    def test_each_vector(self):
        self.assertGreater(len(VECTORS["enqueue"]), 30)
        for v in VECTORS["enqueue"]:
            with self.subTest(v["name"]):
                if "error" in v:
                    with self.assertRaises(forq.InvalidJob) as e:
                        _core.plan(v["queue"], **options(v["job"]))
                    self.assertEqual(str(e.exception), v["error"])
                    continue
                p = _core.plan(v["queue"], **options(v["job"]))
                call = v["call"]
                self.assertEqual(p.kind, call["kind"])
                step = p.step(events_on=False)
                if call["kind"] == "xadd":
                    self.assertEqual(step, ("cmd", ["XADD", call["key"], "*"] + call["fields"]))
                    suffix = call["id_suffix"]
                    self.assertEqual(p.job_id("1-0"), ("1-0" + suffix, False))
                elif call["kind"] == "unique":
                    self.assertEqual(step, ("script", call["script"], call["keys"], call["args"]))
                else:
                    self.assertEqual(step[:3], ("script", call["script"], call["keys"]))
                    at, id_, ttl, record = step[3]
                    self.assertEqual((id_, ttl), (call["id"], "604800"))
                    self.assertEqual(json.loads(record), call["record"])
                    delay = v["job"]["delay_ms"]
                    self.assertAlmostEqual(int(at), _core.now_ms() + delay, delta=5000)

    def test_events_on_makes_the_plain_xadd_added_lua(self):
        p = _core.plan("q", "h", {"a": 1}, priority=4)
        self.assertEqual(p.step(events_on=True),
                         ("script", "added", ["forq:{q}:stream:p4", "forq:{q}:meta",
                                              "forq:{q}:events"],
                          ["4", "handler", "h", "payload", '{"a":1}']))

    def test_python_values(self):
        import datetime as dt
        p = _core.plan("q", "h", 1, delay=dt.timedelta(seconds=2))
        self.assertEqual(p.kind, "delayed")
        with self.assertRaises(forq.InvalidJob) as e:
            _core.plan("q", "h", float("nan"))
        self.assertTrue(str(e.exception).startswith("payload is not JSON: "))
        with self.assertRaises(forq.InvalidJob) as e:
            _core.plan("q", "h", object())
        self.assertTrue(str(e.exception).startswith("payload is not JSON: "))
        with self.assertRaises(forq.InvalidJob):
            _core.plan("q", "h", 1, run_at=dt.datetime(2030, 1, 1))  # no time zone
        self.assertEqual(_core.plan("q", "h", 1, run_at=dt.datetime(2000, 1, 1,
                                                                   tzinfo=dt.timezone.utc)).kind,
                         "xadd")  # in the past: now

    def test_urls(self):
        u = _core.parse_url("redis-sentinel://u:p%40ss@h1:1,h2/mymaster?db=2")
        self.assertEqual((u.kind, u.nodes, u.master, u.username, u.password, u.db),
                         ("sentinel", [("h1", 1), ("h2", 26379)], "mymaster", "u", "p@ss", 2))
        u = _core.parse_url("rediss-cluster://a:7000,[::1]:7001")
        self.assertEqual((u.kind, u.tls, u.nodes), ("cluster", True, [("a", 7000), ("::1", 7001)]))
        with self.assertRaises(forq.ForqError) as e:
            _core.parse_url("http://u:secret@x")
        self.assertNotIn("secret", str(e.exception))


if __name__ == "__main__":
    unittest.main()
