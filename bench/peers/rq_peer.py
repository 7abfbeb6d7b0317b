#!/usr/bin/python3
"""RQ beside forq (bench/peers/README.md).

    /usr/bin/python3 bench/peers/rq_peer.py --redis-port P --workload drain|steady --jobs N ...

The driver enqueues with Queue.enqueue_many (1,000 a pipeline) and runs one worker process:
`rq worker` with SimpleWorker (jobs run in the worker process, no fork per job), results not
kept (result_ttl=0), log level WARNING (--quiet) so that no line is logged per job. The worker
imports this module for `noop`.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peer_common as pc  # noqa: E402

QUEUE = "bench"


def noop(data):
    pc.recorder().record(data["seq"], data["t"])


def main():
    a = pc.parse_args()
    import redis
    import rq
    from rq import Queue

    def make_producer():
        conn = redis.Redis(host="127.0.0.1", port=a.redis_port)
        q = Queue(QUEUE, connection=conn)

        def enqueue(payloads):
            q.enqueue_many([Queue.prepare_data("rq_peer.noop", args=(p,), result_ttl=0)
                            for p in payloads])

        return enqueue, conn.close

    env = {"PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = ["/usr/bin/python3", "-m", "rq.cli", "worker", "--url",
            f"redis://127.0.0.1:{a.redis_port}", "--worker-class", "rq.worker.SimpleWorker",
            "--quiet", QUEUE]
    return pc.drive(
        a, "rq", rq.__version__,
        "one SimpleWorker process (`rq worker -w rq.worker.SimpleWorker`: jobs run in it, no fork "
        "per job); result_ttl=0 (nothing kept); --quiet (no log line per job); enqueue: "
        f"Queue.enqueue_many, 1,000 a pipeline; redis-py {redis.__version__}",
        argv, make_producer, env)


if __name__ == "__main__":
    sys.exit(main())
