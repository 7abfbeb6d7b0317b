#!/usr/bin/env python3
"""bench/waits_at_scale.sh's client (standard library only).

    waits_at_scale.py HTTP_PORT JOBS WORKER_PID "REDIS_CLI_COMMAND"

JOBS waits at once, each POST /v1/queues/default/jobs?wait=60 (echo, id w-<n>, payload n), with
the worker killed -9 at 3 s and Redis shut down at 5 s. A wait that fails asks again by id
(GET ?wait=), and enqueues again (same id: safe) when the job is not known. Prints one JSON
object: how many ended, with a result that is not their own, or not at all."""
import asyncio, json, os, signal, subprocess, sys, time

PORT = int(sys.argv[1]); N = int(sys.argv[2]); WORKER = int(sys.argv[3]); REDIS_CMD = sys.argv[4]

async def http(method, path, body=None, timeout=90):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PORT), 10)
    data = json.dumps(body).encode() if body is not None else b""
    w.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    await w.drain()
    raw = await asyncio.wait_for(r.read(), timeout)
    w.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, rest

results, problems, retries = {}, [], [0]

async def one(i):
    jid, n = f"w-{i}", i
    body = {"handler": "echo", "id": jid, "payload": {"n": n}}
    try:
        s, b = await http("POST", "/v1/queues/default/jobs?wait=60", body)
        if s in (200, 201):
            j = json.loads(b)
            if j.get("state") == "completed":
                results[jid] = j; return
    except Exception as e:
        pass
    until = time.time() + 120
    while time.time() < until:
        retries[0] += 1
        try:
            s, b = await http("GET", f"/v1/jobs/{jid}?queue=default&wait=10")
            if s == 200:
                j = json.loads(b)
                if j.get("state") == "completed":
                    results[jid] = j; return
            elif s == 404:
                await http("POST", "/v1/queues/default/jobs", body)
        except Exception:
            pass
        await asyncio.sleep(0.2)
    problems.append(jid + ": no end")

async def faults():
    await asyncio.sleep(3)
    os.kill(WORKER, signal.SIGKILL)
    print("killed worker", WORKER, "at", len(results), "done", flush=True)
    await asyncio.sleep(2)
    subprocess.run(REDIS_CMD + " shutdown nosave", shell=True)  # AOF (appendfsync always) keeps it
    print("redis down at", len(results), flush=True)

async def main():
    t0 = time.time()
    tasks = [asyncio.create_task(one(i)) for i in range(N)]
    await asyncio.gather(faults(), *tasks)
    bad = [k for k, j in results.items() if j.get("result", {}).get("n") != int(k[2:])]
    print(json.dumps({"jobs": N, "ended": len(results), "wrong_result": len(bad), "no_end": len(problems),
                      "re_asks": retries[0], "seconds": round(time.time() - t0, 1)}))
asyncio.run(main())
