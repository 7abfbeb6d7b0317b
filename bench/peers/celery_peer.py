#!/usr/bin/python3
"""Celery beside forq (bench/peers/README.md).

    /usr/bin/python3 bench/peers/celery_peer.py --redis-port P --workload drain|steady --jobs N ...

The driver publishes with send_task over one producer connection (Celery has no bulk enqueue
of independent tasks) and runs one worker process: `celery worker --pool solo` (tasks run in
the worker process itself), acks as default (early: acknowledged before the task runs),
prefetch multiplier 64 (Celery's optimizing guide, for many short tasks), no result backend
and ignore_result, log level WARNING (no log line per task), and without gossip, mingle and
heartbeat (one worker: nobody to talk to). The worker imports this module as its app.
"""
import os
import sys

from celery import Celery

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peer_common as pc  # noqa: E402

QUEUE = "bench"
PREFETCH_MULTIPLIER = 64

app = Celery("celery_peer",
             broker=f"redis://127.0.0.1:{os.environ.get('BENCH_REDIS_PORT', '6379')}/0")
app.conf.update(task_default_queue=QUEUE, task_ignore_result=True,
                worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
                worker_hijack_root_logger=False)


@app.task(name="bench.noop", ignore_result=True)
def noop(data):
    pc.recorder().record(data["seq"], data["t"])


def main():
    a = pc.parse_args()
    import celery
    import kombu
    import redis

    app.conf.broker_url = f"redis://127.0.0.1:{a.redis_port}/0"

    def make_producer():
        conn = app.connection_for_write()
        conn.ensure_connection()
        producer = app.amqp.Producer(conn)

        def enqueue(payloads):
            for p in payloads:
                app.send_task("bench.noop", args=(p,), producer=producer)

        def close():
            producer.release()
            conn.release()

        return enqueue, close

    env = {"PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = ["/usr/bin/python3", "-m", "celery", "-A", "celery_peer", "worker", "--pool", "solo",
            "--loglevel", "WARNING", "--prefetch-multiplier", str(PREFETCH_MULTIPLIER),
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", QUEUE,
            "--hostname", "bench@%h"]
    return pc.drive(
        a, "celery", celery.__version__,
        "one worker process, --pool solo (tasks run in it); acks default (early); "
        f"--prefetch-multiplier {PREFETCH_MULTIPLIER}; no result backend, ignore_result; "
        "--loglevel WARNING (no log line per task); --without-gossip/mingle/heartbeat; "
        "enqueue: send_task one by one over one producer connection (no bulk API); "
        f"kombu {kombu.__version__}, redis-py {redis.__version__}",
        argv, make_producer, env)


if __name__ == "__main__":
    sys.exit(main())
