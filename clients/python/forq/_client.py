"""forq.Client: the synchronous client, on redis-py."""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Union

import redis
from redis.exceptions import NoScriptError, ResponseError

from . import _core
from ._core import Enqueued, Job
from .errors import ForqError

Seconds = Union[float, int, _dt.timedelta]


class Cancelled(NamedTuple):
    # cancelled: it will never start; requested: it runs, and its worker is told to stop (within
    # about 0.5 s); already_requested: asked before; terminal: it had already ended.
    outcome: str
    job: Job


def seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, _dt.timedelta) else float(value)


def connect(url: str, asyncio: bool = False, sentinel_password: Optional[str] = None,
            **kwargs: Any) -> Any:
    """A redis-py client (sync, or redis.asyncio's) for a URL as forq takes it."""
    u = _core.parse_url(url)
    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("encoding_errors", "replace")
    if asyncio:
        import redis.asyncio as lib
        from redis.asyncio.cluster import ClusterNode, RedisCluster
        from redis.asyncio.sentinel import Sentinel
    else:
        lib = redis
        from redis.cluster import ClusterNode, RedisCluster
        from redis.sentinel import Sentinel
    if u.kind == "plain":
        return lib.Redis.from_url(u.url, **kwargs)
    creds = {"username": u.username, "password": u.password}
    if u.tls:
        kwargs["ssl"] = True
    if u.kind == "cluster":
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in u.nodes], **creds,
                            **kwargs)
    sentinel_kwargs = {"password": sentinel_password} if sentinel_password else {}
    if u.tls:
        sentinel_kwargs["ssl"] = True
    s = Sentinel(u.nodes, sentinel_kwargs=sentinel_kwargs, **kwargs)
    return s.master_for(u.master, db=u.db, **creds)


def _args(step: tuple) -> List[Any]:
    """A "cmd" or "script" step as a command's arguments."""
    if step[0] == "cmd":
        return list(step[1])
    s = _core.SCRIPTS[step[1]]
    return ["EVALSHA", s.sha, len(step[2]), *step[2], *step[3]]


def _read(conn: Any, n: int) -> List[Any]:
    """n replies from a connection, an error reply as its exception."""
    got: List[Any] = []
    for _ in range(n):
        try:
            got.append(conn.read_response())
        except ResponseError as e:
            got.append(e)
    return got


class Client:
    """A producer's and waiter's handle on forq's queues (docs/clients.md).

        client = forq.Client("redis://127.0.0.1:6379")
        job = client.enqueue("emails", "send", {"to": "a@example.com"}, waitable=True)
        done = client.wait("emails", job.id, timeout=30)

    `url` is a URL as forq takes it (redis://, rediss://, unix://, redis-sentinel://,
    redis-cluster://) or a redis-py client of your own. Thread-safe as redis-py is.
    """

    def __init__(self, url: Any = "redis://127.0.0.1:6379", *,
                 sentinel_password: Optional[str] = None, **redis_kwargs: Any):
        if isinstance(url, str):
            self.redis = connect(url, sentinel_password=sentinel_password, **redis_kwargs)
            self._own = True
        else:
            self.redis, self._own = url, False
        self._cache = _core.QueueCache()
        self._loaded = False

    def close(self) -> None:
        if self._own:
            self.redis.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the driver: runs an operation's steps on redis-py --

    def _run(self, ops: Any) -> Any:
        reply: Any = None
        failed: Optional[BaseException] = None
        try:
            while True:
                step = ops.send(reply) if failed is None else ops.throw(failed)
                failed = None
                try:
                    reply = _core.text(self._do(step))
                except Exception as e:  # the operation's to handle (a wait rides out a restart)
                    failed = e
        except StopIteration as done:
            return done.value

    def _do(self, step: tuple) -> Any:
        kind = step[0]
        if kind == "cmd":
            return self.redis.execute_command(*step[1])
        if not self._loaded and (kind in ("pipe", "pipes") or (
                kind == "script" and hasattr(self.redis, "get_nodes"))):
            # Redis gets the scripts before the first pipeline, so that none of its calls is
            # refused (NOSCRIPT) and sent again after the others, out of their order; and a
            # cluster's before its first call (its client logs every error reply). Loaded again
            # after Redis is seen without them.
            for s in _core.SCRIPTS.values():
                self.redis.script_load(s.source)
            self._loaded = True
        if kind == "script":
            name, keys, args = step[1:]
            s = _core.SCRIPTS[name]
            try:
                return self.redis.evalsha(s.sha, len(keys), *keys, *args)
            except NoScriptError:
                return self.redis.eval(s.source, len(keys), *keys, *args)
        if kind == "block":
            return self.redis.execute_command(*step[2])
        if kind == "sleep":
            time.sleep(step[1])
            return None
        if kind == "pipe":
            return self._pipe(step[1])
        if kind == "pipes":
            return self._pipes(step[1])
        raise AssertionError(kind)

    def _pipes(self, rounds: Any) -> List[List[Any]]:
        """Each round's replies, in order. On one connection of a plain or sentinel client, a
        round is sent before the replies of the one before are read, so Redis runs one while
        this process makes the next (one socket: in order; no thread, no GIL to wait for). A
        cluster's client sends one round after the other."""
        pool = getattr(self.redis, "connection_pool", None)
        if pool is None or hasattr(self.redis, "get_nodes"):
            return [self._pipe(steps) for steps in rounds]
        sent: List[List[tuple]] = []
        out: List[List[Any]] = []
        conn = pool.get_connection("EVALSHA")
        try:
            for steps in rounds:
                conn.send_packed_command(conn.pack_commands([_args(st) for st in steps]))
                sent.append(steps)
                if len(sent) - len(out) > 1:
                    out.append(_read(conn, len(sent[len(out)])))
            while len(out) < len(sent):
                out.append(_read(conn, len(sent[len(out)])))
        except BaseException:
            conn.disconnect()  # replies may be left unread on it
            raise
        finally:
            pool.release(conn)
        # Calls refused for a script Redis did not have (flushed, restarted) did nothing: load
        # the scripts and send those again, in order.
        again = [(i, j) for i, got in enumerate(out) for j, r in enumerate(got)
                 if isinstance(r, NoScriptError) or (isinstance(r, ResponseError) and
                                                     str(r).startswith("NOSCRIPT"))]
        if again:
            for s in _core.SCRIPTS.values():
                self.redis.script_load(s.source)
            for i, j in again:
                out[i][j] = self._pipe([sent[i][j]])[0]
        return out  # (_run makes text of every reply)

    def _pipe(self, steps: List[tuple]) -> List[Any]:
        def send(which: List[int]) -> List[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for i in which:
                st = steps[i]
                if st[0] == "cmd":
                    pipe.execute_command(*st[1])
                else:  # (by name: redis-py's cluster pipeline refuses its evalsha method)
                    s = _core.SCRIPTS[st[1]]
                    pipe.execute_command("EVALSHA", s.sha, len(st[2]), *st[2], *st[3])
            return pipe.execute(raise_on_error=False)
        out = send(list(range(len(steps))))
        unloaded = [i for i, r in enumerate(out) if isinstance(r, NoScriptError) or (
            isinstance(r, ResponseError) and str(r).startswith("NOSCRIPT"))]
        if unloaded:  # refused before doing anything: load the scripts, send those again
            self._loaded = False  # (Redis lost them: all are loaded before the next pipeline)
            for name in {steps[i][1] for i in unloaded}:
                self.redis.script_load(_core.SCRIPTS[name].source)
            for i, r in zip(unloaded, send(unloaded)):
                out[i] = r
        return out

    # -- what a backend does --

    def enqueue(self, queue: str, handler: Optional[str] = None, payload: Any = None, *,
                id: Optional[str] = None, priority: int = 0, attempts: Optional[int] = None,
                retry: Optional[str] = None, delay: Any = None, run_at: Any = None,
                waitable: bool = False) -> Enqueued:
        """Adds one job. `delay`: ms or a timedelta; `run_at`: ms since the epoch or an aware
        datetime; `id`: yours, making the enqueue idempotent (a duplicate adds nothing);
        `waitable`: its end is announced, so `wait` wakes at once. InvalidJob in the words of
        `forq enqueue` if the job breaks a rule."""
        p = _core.plan(queue, handler, payload, id=id, priority=priority, attempts=attempts,
                       retry=retry, delay=delay, run_at=run_at, waitable=waitable)
        return self._run(_core.enqueue(self._cache, p))

    def enqueue_many(self, queue: str, jobs: Iterable[Dict[str, Any]]
                     ) -> List[Union[Enqueued, ForqError]]:
        """Many jobs, pipelined (1,000 a round trip). Each job is a dict of enqueue's arguments
        (handler, payload, id, priority, ...). One outcome per job, in order: Enqueued, or the
        error that refused it (InvalidJob: nothing added for it)."""
        return self._run(_core.enqueue_many(self._cache, queue, list(jobs)))

    def get_job(self, queue: str, id: str) -> Optional[Job]:
        """The job as it stands, or None when the queue knows nothing of the id."""
        return self._run(_core.get_job(queue, id))[0]

    def wait(self, queue: str, id: str, timeout: Seconds = 30.0) -> Optional[Job]:
        """The job once it has ended (completed, dead or cancelled), or as it stands when the
        timeout runs out (check `job.terminal`); None if the queue knows nothing of the id."""
        return self._run(_core.wait(queue, id, seconds(timeout)))

    def enqueue_and_wait(self, queue: str, handler: Optional[str] = None, payload: Any = None,
                         *, timeout: Seconds = 30.0, **options: Any) -> Job:
        """enqueue (waitable), then wait for its end."""
        options["waitable"] = True
        job = self.enqueue(queue, handler, payload, **options)
        found = self.wait(queue, job.id, timeout)
        if found is None:
            raise ForqError("job %s vanished from queue %s while waited for" % (job.id, queue))
        return found

    def cancel(self, queue: str, id: str, *, by: str = "client", reason: str = ""
               ) -> Optional[Cancelled]:
        """Cancels a job: one not started never starts; a running one is told to stop. None if
        the queue knows nothing of the id."""
        r = self._run(_core.cancel(queue, id, by, reason))
        return None if r is None else Cancelled(*r)

    def counts(self, queue: str) -> Dict[str, Any]:
        """{"ready", "active", "delayed", "dead", "cancelled", "completed", "paused"}."""
        return self._run(_core.counts(queue))

    def pause(self, queue: str) -> None:
        self._run(_core.set_paused(queue, True))

    def resume(self, queue: str) -> None:
        self._run(_core.set_paused(queue, False))
