"""forq.asyncio.Client: the client for asyncio, on redis.asyncio; the same operations as
forq.Client, each a coroutine."""
from __future__ import annotations

import asyncio as _asyncio
from typing import Any, Dict, Iterable, List, Optional, Union

from redis.exceptions import NoScriptError, ResponseError

from . import _core
from ._client import Cancelled, Enqueued, Seconds, connect, seconds
from ._core import Job
from .errors import ForqError

__all__ = ["Client"]


class Client:
    """As forq.Client, for asyncio: `await client.enqueue(...)`. `url` is a URL as forq takes it
    or a redis.asyncio client of your own. Close it with `await client.close()` (or use
    `async with`)."""

    def __init__(self, url: Any = "redis://127.0.0.1:6379", *,
                 sentinel_password: Optional[str] = None, **redis_kwargs: Any):
        if isinstance(url, str):
            self.redis = connect(url, asyncio=True, sentinel_password=sentinel_password,
                                 **redis_kwargs)
            self._own = True
        else:
            self.redis, self._own = url, False
        self._cache = _core.QueueCache()
        self._loaded = False

    async def close(self) -> None:
        if self._own:
            await self.redis.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, ops: Any) -> Any:
        reply: Any = None
        failed: Optional[BaseException] = None
        try:
            while True:
                step = ops.send(reply) if failed is None else ops.throw(failed)
                failed = None
                try:
                    reply = _core.text(await self._do(step))
                except Exception as e:  # the operation's to handle (a wait rides out a restart)
                    failed = e
        except StopIteration as done:
            return done.value

    async def _do(self, step: tuple) -> Any:
        kind = step[0]
        if kind == "cmd":
            return await self.redis.execute_command(*step[1])
        if not self._loaded and (kind in ("pipe", "pipes") or (
                kind == "script" and hasattr(self.redis, "get_nodes"))):
            # Redis gets the scripts before the first pipeline, so that none of its calls is
            # refused (NOSCRIPT) and sent again after the others, out of their order; and a
            # cluster's before its first call (its client logs every error reply). Loaded again
            # after Redis is seen without them.
            for s in _core.SCRIPTS.values():
                await self.redis.script_load(s.source)
            self._loaded = True
        if kind == "script":
            name, keys, args = step[1:]
            s = _core.SCRIPTS[name]
            try:
                return await self.redis.evalsha(s.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self.redis.eval(s.source, len(keys), *keys, *args)
        if kind == "block":
            return await self.redis.execute_command(*step[2])
        if kind == "sleep":
            await _asyncio.sleep(step[1])
            return None
        if kind == "pipe":
            return await self._pipe(step[1])
        if kind == "pipes":  # (one loop: no making while sending; in order)
            return [await self._pipe(steps) for steps in step[1]]
        raise AssertionError(kind)

    async def _pipe(self, steps: List[tuple]) -> List[Any]:
        async def send(which: List[int]) -> List[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for i in which:
                st = steps[i]
                if st[0] == "cmd":
                    pipe.execute_command(*st[1])
                else:
                    s = _core.SCRIPTS[st[1]]
                    pipe.execute_command("EVALSHA", s.sha, len(st[2]), *st[2], *st[3])
            return await pipe.execute(raise_on_error=False)
        out = await send(list(range(len(steps))))
        unloaded = [i for i, r in enumerate(out) if isinstance(r, NoScriptError) or (
            isinstance(r, ResponseError) and str(r).startswith("NOSCRIPT"))]
        if unloaded:  # refused before doing anything: load the scripts, send those again
            self._loaded = False  # (Redis lost them: all are loaded before the next pipeline)
            for name in {steps[i][1] for i in unloaded}:
                await self.redis.script_load(_core.SCRIPTS[name].source)
            for i, r in zip(unloaded, await send(unloaded)):
                out[i] = r
        return out

    async def enqueue(self, queue: str, handler: Optional[str] = None, payload: Any = None, *,
                      id: Optional[str] = None, priority: int = 0,
                      attempts: Optional[int] = None, retry: Optional[str] = None,
                      delay: Any = None, run_at: Any = None, waitable: bool = False) -> Enqueued:
        p = _core.plan(queue, handler, payload, id=id, priority=priority, attempts=attempts,
                       retry=retry, delay=delay, run_at=run_at, waitable=waitable)
        return await self._run(_core.enqueue(self._cache, p))

    async def enqueue_many(self, queue: str, jobs: Iterable[Dict[str, Any]]
                           ) -> List[Union[Enqueued, ForqError]]:
        return await self._run(_core.enqueue_many(self._cache, queue, list(jobs)))

    async def get_job(self, queue: str, id: str) -> Optional[Job]:
        return (await self._run(_core.get_job(queue, id)))[0]

    async def wait(self, queue: str, id: str, timeout: Seconds = 30.0) -> Optional[Job]:
        return await self._run(_core.wait(queue, id, seconds(timeout)))

    async def enqueue_and_wait(self, queue: str, handler: Optional[str] = None,
                               payload: Any = None, *, timeout: Seconds = 30.0,
                               **options: Any) -> Job:
        options["waitable"] = True
        job = await self.enqueue(queue, handler, payload, **options)
        found = await self.wait(queue, job.id, timeout)
        if found is None:
            raise ForqError("job %s vanished from queue %s while waited for" % (job.id, queue))
        return found

    async def cancel(self, queue: str, id: str, *, by: str = "client", reason: str = ""
                     ) -> Optional[Cancelled]:
        r = await self._run(_core.cancel(queue, id, by, reason))
        return None if r is None else Cancelled(*r)

    async def counts(self, queue: str) -> Dict[str, Any]:
        return await self._run(_core.counts(queue))

    async def pause(self, queue: str) -> None:
        await self._run(_core.set_paused(queue, True))

    async def resume(self, queue: str) -> None:
        await self._run(_core.set_paused(queue, False))
