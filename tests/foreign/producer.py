#!/usr/bin/python3
"""A producer and result reader in Python, written from docs/protocol.md alone (no forq code).

    producer.py URL QUEUE enqueue N         N jobs for handler `echo`, payload {"n": i}; prints ids
    producer.py URL QUEUE enqueue-unique ID SCRIPT
                                            one job with a caller-given id, by one EVAL of SCRIPT
                                            (src/lua/enqueue_unique.lua); prints "<result> <id>"
    producer.py URL QUEUE enqueue-bad       a job whose payload is not JSON; prints its id
    producer.py URL QUEUE results ID...     prints "<id> <result JSON>" per finished job
    producer.py URL QUEUE dead ID...        prints "<id> <reason>" per dead job

Run by tests/integration/foreign_producer_test.cpp with Debian's python3-redis.
"""
import json
import sys

import redis


def main():
    url, queue, command, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    r = redis.Redis.from_url(url, decode_responses=True)
    stream = "forq:{%s}:stream" % queue
    if command == "enqueue":
        pipe = r.pipeline(transaction=False)
        for i in range(int(args[0])):
            pipe.xadd(stream, {"handler": "echo", "payload": json.dumps({"n": i})})
        for job_id in pipe.execute():
            print(job_id)
    elif command == "enqueue-unique":
        caller_id, script = args[0], open(args[1]).read()
        unique = "forq:{%s}:unique:%s" % (queue, caller_id)
        outcome, _entry = r.eval(script, 2, unique, stream, caller_id, 604800,
                                 "handler", "echo", "payload", json.dumps({"id": caller_id}))
        print(outcome, caller_id)
    elif command == "enqueue-bad":
        print(r.xadd(stream, {"handler": "echo", "payload": "{this is not json"}))
    elif command == "results":
        for job_id in args:
            record = r.hget("forq:{%s}:results:data" % queue, job_id)
            print(job_id, json.dumps(json.loads(record)["result"], sort_keys=True)
                  if record else "missing")
    elif command == "dead":
        for job_id in args:
            record = r.hget("forq:{%s}:dead:jobs" % queue, job_id)
            print(job_id, json.loads(record)["reason"] if record else "missing")
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
