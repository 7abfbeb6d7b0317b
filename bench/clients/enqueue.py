"""One round of the Python side of bench/clients/run.sh: enqueue N jobs with forq's Python client
(enqueue_many), RQ (Queue.enqueue_many, 1,000 a call, pipelined) or Celery (apply_async in a
loop: N/10 jobs, it is that slow), and S single enqueues one after the other; prints one JSON line
{"who", "bulk_jobs_per_s", "redis_us_per_job" (Redis's CPU in the bulk), "single_us"}.
    python3 enqueue.py forq|rq|celery REDIS_PORT N S
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "clients", "python"))


def noop(i):  # what RQ and Celery would run
    return i


def main():
    who, port, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    url = "redis://127.0.0.1:%d" % port
    if who == "forq":
        import forq
        c = forq.Client(url)

        def bulk():
            c.enqueue_many("bench-py", [{"handler": "noop", "payload": {"i": i}}
                                        for i in range(n)])

        def single(i):
            c.enqueue("bench-py-1", "noop", {"i": i})
    elif who == "rq":
        import redis
        from rq import Queue
        conn = redis.Redis.from_url(url)
        q, q1 = Queue("bench", connection=conn), Queue("bench1", connection=conn)

        def bulk():
            for at in range(0, n, 1000):
                with conn.pipeline() as pipe:
                    q.enqueue_many([Queue.prepare_data("enqueue.noop", ({"i": i},))
                                    for i in range(at, min(n, at + 1000))], pipeline=pipe)
                    pipe.execute()

        def single(i):
            q1.enqueue("enqueue.noop", {"i": i})
    else:
        from celery import Celery
        app = Celery("bench", broker=url)
        task = app.task(name="noop")(noop)
        n = max(1, n // 10)

        def bulk():
            for i in range(n):
                task.apply_async(({"i": i},))

        def single(i):
            task.apply_async(({"i": i},))
    single(-1)  # connected, scripts loaded
    import redis
    probe = redis.Redis(port=port)

    def redis_cpu():
        info = probe.info("cpu")
        return (info["used_cpu_user"] + info["used_cpu_sys"]) * 1e6
    cpu0 = redis_cpu()
    t = time.perf_counter()
    bulk()
    bulk_s = time.perf_counter() - t
    redis_us = (redis_cpu() - cpu0) / n
    t = time.perf_counter()
    for i in range(s):
        single(i)
    single_us = (time.perf_counter() - t) * 1e6 / s
    print(json.dumps({"who": "python-" + who, "bulk_jobs_per_s": n / bulk_s,
                      "redis_us_per_job": redis_us,
                      "single_us": single_us}))


if __name__ == "__main__":
    main()
