"""What the sync and asyncio clients share: the protocol's facts (from the copy of
src/protocol/ in forq/protocol/), the checks a job must pass, and each operation written once
as a generator of Redis steps that forq.Client and forq.asyncio.Client run.

A step is one of:
  ("cmd", [args...])                 one command; its reply
  ("script", name, keys, args)       one script of forq/protocol/ (EVALSHA, EVAL if not loaded)
  ("pipe", [cmd or script steps])    one round trip; a list of replies, an error as its exception
  ("pipes", iterator of step lists)  rounds in order, each as "pipe"; a list of their replies (a
                                     driver may send a round while the next one is being made)
  ("block", ms, [args...])           a command that waits inside Redis up to ms (XREAD BLOCK)
  ("sleep", seconds)
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple
from urllib.parse import parse_qs, unquote

import redis.exceptions

from .errors import InvalidJob, SchemaMismatch, ForqError

_FILES = resources.files(__package__) / "protocol"
PROTOCOL = json.loads((_FILES / "protocol.json").read_text(encoding="utf-8"))
SCHEMA = PROTOCOL["schema"]
GROUP = PROTOCOL["group"]
LIMITS = PROTOCOL["limits"]
_NAME = re.compile(LIMITS["name_pattern"])
_NAME_RULE = "use 1 to 128 characters of A-Z a-z 0-9 _ . : -"
_GENERATED = re.compile(r"^\d+-\d+$|^\d+-\d+-p\d+$|^\d+-d\d+$")
UNIQUE_TTL = str(LIMITS["unique_ttl_s"])
_PAYLOAD_MAX = LIMITS["payload_bytes"]
_GOOD_HANDLERS: set = set()  # names that passed the check (a bulk of one handler checks it once)


class Script:
    def __init__(self, name: str):
        self.name = name
        self.source = (_FILES / (name + ".lua")).read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


SCRIPTS = {n: Script(n) for n in ("added", "enqueue_many", "enqueue_unique", "enqueue_delayed",
                                  "job", "results", "cancel")}


def key(queue: str, name: str, **parts: Any) -> str:
    text = PROTOCOL["keys"][name].replace("<queue>", queue)
    for k, v in parts.items():
        text = text.replace("<%s>" % k, str(v))
    return text


@functools.lru_cache(maxsize=1024)
def stream_key(queue: str, priority: int) -> str:
    return key(queue, "stream") if priority == 0 else key(queue, "stream_priority",
                                                             priority=priority)


def text(x: Any) -> Any:
    """A reply with every bytes value as str (a redis-py client of the caller's own may not decode
    replies; bytes that are not UTF-8 become U+FFFD, as forq shows them)."""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, list):
        return [text(v) for v in x] if any(isinstance(v, (bytes, list, tuple, dict)) for v in x) \
            else x
    if isinstance(x, tuple):
        return tuple(text(v) for v in x)
    if isinstance(x, dict):
        return {text(k): text(v) for k, v in x.items()}
    return x


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- checks, in the words of `forq enqueue` (src/protocol/vectors.json) ----

def check_queue(queue: Any) -> str:
    if not isinstance(queue, str) or not _NAME.match(queue) or "\n" in queue:
        raise InvalidJob('queue name "%s" is not allowed: %s' % (queue, _NAME_RULE))
    return queue


def _bounds(name: str, value: Any, lo: int, hi: int, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJob('%s "%s" is not allowed: use a whole number from %d to %d%s'
                         % (name, value, lo, hi, unit))
    if value < lo or value > hi:
        raise InvalidJob("%s %d is not allowed: use a whole number from %d to %d%s"
                         % (name, value, lo, hi, unit))
    return value


def _has_control(s: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s)


_RETRY_RULE = ("use attempts (a whole number from 1 to 1000), fixed or exponential, durations "
               "with a unit (ms, s, m, h, d; 1ms to 7d: the first is the base wait, the second "
               "or one written max=... the cap) and jitter or nojitter, separated by '/', e.g. "
               "10/fixed/30s or exponential/2s/10m")
_UNITS = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)$")
_BACKOFF_HI = LIMITS["backoff_ms"][1]


def _show(ms: int) -> str:
    if ms <= 0:
        return "%dms" % ms
    for name, size in _UNITS:
        if ms % size == 0:
            return "%d%s" % (ms // size, name)
    return "%dms" % ms


def normalise_retry(text: str) -> str:
    """A retry policy (docs/retries.md) as forq writes it, or InvalidJob in forq's words."""
    def refuse(why: str) -> InvalidJob:
        return InvalidJob('retry "%s": %s' % (text, why))
    if not isinstance(text, str):
        raise InvalidJob('retry must be text, e.g. "10/fixed/30s" (docs/retries.md)')
    if text == "":
        raise refuse("empty; " + _RETRY_RULE)
    attempts = exponential = base = cap = jitter = None
    for t in text.split("/"):
        if t.isdigit() and t.isascii():
            if attempts is not None:
                raise refuse("the number of attempts is given twice")
            n = int(t)
            if n < 1 or n > 1000:
                raise refuse("attempts %d is not allowed: use a whole number from 1 to 1000" % n)
            attempts = n
        elif t in ("fixed", "exponential"):
            if exponential is not None:
                raise refuse("fixed or exponential is given twice")
            exponential = t == "exponential"
        elif t in ("jitter", "nojitter"):
            if jitter is not None:
                raise refuse("jitter or nojitter is given twice")
            jitter = t == "jitter"
        else:
            m = _DURATION.match(t[4:] if t.startswith("max=") else t)
            if not m:
                raise refuse('"%s" is not a part of a retry policy: %s' % (t[:40], _RETRY_RULE))
            ms = float(m.group(1)) * dict(_UNITS)[m.group(2)]
            is_cap = t.startswith("max=") or base is not None
            if is_cap and cap is not None:
                raise refuse("the cap is given twice")
            if ms < 1:
                raise refuse("%s is under 1ms" % t)
            what = "the cap" if is_cap else "the base wait"
            if ms > _BACKOFF_HI:
                raise refuse("%s %s is not allowed: use 1ms to 7d" % (what, t))
            rounded = int(math.floor(ms + 0.5))
            if rounded > _BACKOFF_HI:
                raise refuse("%s %s is not allowed: use 1ms to 7d" % (what, _show(rounded)))
            if is_cap:
                cap = rounded
            else:
                base = rounded
    if base is not None and cap is not None and cap < base:
        raise refuse("the cap %s is shorter than the base wait %s" % (_show(cap), _show(base)))
    parts = []
    if attempts is not None:
        parts.append(str(attempts))
    if exponential is not None:
        parts.append("exponential" if exponential else "fixed")
    if base is not None:
        parts.append(_show(base))
    if cap is not None:
        parts.append(("" if base is not None else "max=") + _show(cap))
    if jitter is not None:
        parts.append("jitter" if jitter else "nojitter")
    return "/".join(parts)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def to_json(value: Any) -> str:
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as e:
        raise InvalidJob("payload is not JSON: %s" % e) from None


def _ms(value: Any, name: str) -> int:
    """A delay (ms, or a timedelta) or a time (ms since the epoch, or a datetime) as ms."""
    if isinstance(value, _dt.timedelta):
        return int(value / _dt.timedelta(milliseconds=1))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise InvalidJob("%s: a datetime needs a time zone (tzinfo)" % name)
        return int(value.timestamp() * 1000)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Enqueued(NamedTuple):
    """A job added (or found added before: `duplicate`, and nothing was added)."""
    id: str
    duplicate: bool  # a job with this caller id was already enqueued; nothing was added


class Plan:
    """How one job goes into Redis: kind xadd (a plain XADD, or added.lua while the queue's
    events are on), unique (enqueue_unique.lua) or delayed (enqueue_delayed.lua)."""
    __slots__ = ("kind", "queue", "priority", "fields", "id", "run_at_ms", "size")

    def __init__(self, kind: str, queue: str, priority: int, fields: List[str],
                 id: Optional[str] = None, run_at_ms: Optional[int] = None, size: int = 0):
        self.kind, self.queue, self.priority, self.fields = kind, queue, priority, fields
        self.id, self.run_at_ms, self.size = id, run_at_ms, size

    def step(self, events_on: bool) -> tuple:
        q = self.queue
        stream = stream_key(q, self.priority)
        if self.kind == "xadd":
            if events_on:
                return ("script", "added", [stream, key(q, "meta"), key(q, "events")],
                        [str(self.priority)] + self.fields)
            return ("cmd", ["XADD", stream, "*"] + self.fields)
        if self.kind == "unique":
            return ("script", "enqueue_unique",
                    [key(q, "unique", id=self.id), stream, key(q, "meta"), key(q, "events")],
                    [self.id, UNIQUE_TTL] + self.fields)
        keys = [key(q, "delayed"), key(q, "delayed_jobs"), key(q, "stats"), key(q, "wake")]
        if self.id is not None:
            keys.append(key(q, "unique", id=self.id))
        keys += [key(q, "meta"), key(q, "events")]
        return ("script", "enqueue_delayed", keys,
                [str(self.run_at_ms), self.id or "", UNIQUE_TTL, to_json(self.record())])

    def record(self) -> Dict[str, str]:
        rec = dict(zip(self.fields[0::2], self.fields[1::2]))
        if self.priority:
            rec["priority"] = str(self.priority)
        return rec

    def job_id(self, reply: Any) -> Tuple[str, bool]:
        """(job id, duplicate) from the step's reply."""
        if self.kind == "xadd":
            entry = reply if isinstance(reply, str) else None
            if entry is None:
                raise ForqError("Redis answered the enqueue with %r" % (reply,))
            return (entry + ("-p%d" % self.priority if self.priority else ""), False)
        if not isinstance(reply, list) or len(reply) != 2:
            raise ForqError("Redis answered the enqueue with %r" % (reply,))
        return (self.id if self.kind == "unique" else reply[1], reply[0] == "duplicate")


def plan(queue: str, handler: Optional[str] = None, payload: Any = None, *, id: Optional[str] = None,
         priority: int = 0, attempts: Optional[int] = None, retry: Optional[str] = None,
         delay: Any = None, run_at: Any = None, waitable: bool = False,
         _queue_checked: bool = False) -> Plan:
    """Checks a job as `forq enqueue` does and says how it goes into Redis."""
    if not _queue_checked:
        check_queue(queue)
    if handler is None:
        fields = []
    elif handler in _GOOD_HANDLERS:
        fields = ["handler", handler]
    else:
        if not isinstance(handler, str) or not _NAME.match(handler) or "\n" in handler:
            raise InvalidJob('handler "%s" is not allowed: %s' % (handler, _NAME_RULE))
        if len(_GOOD_HANDLERS) > 1000:
            _GOOD_HANDLERS.clear()
        _GOOD_HANDLERS.add(handler)
        fields = ["handler", handler]
    text = to_json(payload)
    size = len(text)  # characters: bytes only matter near the limit (4 bytes a character at most)
    if size * 4 > _PAYLOAD_MAX:
        size = len(text.encode("utf-8"))
        if size > _PAYLOAD_MAX:
            raise InvalidJob("payload is %d bytes; the limit is %d" % (size, _PAYLOAD_MAX))
    fields.append("payload")
    fields.append(text)
    if id is not None:
        if not isinstance(id, str):
            raise InvalidJob("id must be text (1 to 256 bytes of UTF-8)")
        n = len(id.encode("utf-8", "surrogatepass"))
        if n < 1 or n > 256:
            raise InvalidJob("id must be 1 to 256 bytes")
        try:
            id.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJob("id must be UTF-8 text") from None
        if _has_control(id):
            raise InvalidJob("id must not hold control characters (newline, tab, NUL, escape, "
                             "...): it is printed in lines, logs and terminals")
        if _GENERATED.match(id):
            raise InvalidJob('id "%s" has the shape of an id forq generates (<ms>-<n>, '
                             "<ms>-<n>-p<N>, <ms>-d<n>), so it could name another job: choose "
                             "another" % id)
    if priority != 0 or type(priority) is not int:
        lo, hi = LIMITS["priority"]
        _bounds("priority", priority, lo, hi, " (higher runs first)")
    if retry is not None:
        retry = normalise_retry(retry)
    if attempts is not None:
        lo, hi = LIMITS["max_attempts"]
        _bounds("attempts", attempts, lo, hi)
        fields += ["max_attempts", str(attempts)]
    if retry is not None:
        fields += ["retry", retry]
    if waitable:
        fields += ["waitable", "1"]
    if delay is None and run_at is None:
        if id is not None:
            return Plan("unique", queue, priority, fields, id)
        return Plan("xadd", queue, priority, fields, None, None, size)
    at = None
    lo, hi = LIMITS["delay_ms"]
    if delay is not None and run_at is not None:
        raise InvalidJob("give delay or run_at, not both")
    if delay is not None:
        d = _bounds("delay_ms", _ms(delay, "delay"), lo, hi, " ms (one year)")
        if d > 0:
            at = now_ms() + d
    elif run_at is not None:
        at = _ms(run_at, "run_at")
        if isinstance(at, bool) or not isinstance(at, int):
            raise InvalidJob('run_at_ms "%s" is not allowed: use a time (ms since the Unix epoch, '
                             "or a datetime)" % run_at)
        if at > now_ms() + hi:
            raise InvalidJob("run_at_ms %d is more than a year from now: a job may wait at most "
                             "%d ms" % (at, hi))
        if at <= now_ms():
            at = None
    if at is not None:
        return Plan("delayed", queue, priority, fields, id, at)
    if id is not None:
        return Plan("unique", queue, priority, fields, id)
    return Plan("xadd", queue, priority, fields, None, None, size)


# ---- a job as forq shows it (docs/operations.md, "One shape for a job") ----

def pairs(x: Any) -> Dict[str, Any]:
    """A reply of field/value pairs (a flat list, or a dict where redis-py made one) as a dict."""
    if isinstance(x, dict):
        return x
    return dict(zip(x[0::2], x[1::2])) if isinstance(x, (list, tuple)) else {}


def _int(text: Any) -> int:
    m = re.match(r"^\s*(-?\d+)", str(text))
    return int(m.group(1)) if m else 0


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Job:
    """A job as it stands: what `forq job ID --json` prints, as attributes. `to_dict()` gives
    that JSON object."""
    queue: str
    id: str
    state: str  # ready | active | delayed | completed | dead | cancelled
    handler: Optional[str] = None
    payload: Any = None
    attempts: int = 0
    priority: Optional[int] = None
    max_attempts: Optional[int] = None
    retry: Optional[str] = None
    result: Any = None
    last_error: Optional[str] = None
    reason: Optional[str] = None
    errors: Optional[list] = None
    run_at_ms: Optional[int] = None
    finished_ms: Optional[int] = None
    progress: Any = None
    waitable: bool = False
    cancel_requested: bool = False
    cancelled_by: Optional[str] = None
    cancel_reason: Optional[str] = None
    fields: Dict[str, str] = field(default_factory=dict)
    _has: set = field(default_factory=set, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.state in ("completed", "dead", "cancelled")

    def _set(self, name: str, value: Any) -> None:
        setattr(self, name, value)
        self._has.add(name)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"queue": self.queue, "id": self.id, "state": self.state}
        order = ["handler", "payload", "attempts", "priority", "max_attempts", "retry", "result",
                 "last_error", "reason", "errors", "run_at_ms", "finished_ms", "waitable",
                 "cancel_requested", "cancelled_by", "cancel_reason", "progress"]
        for name in order:
            if name == "attempts":
                out["attempts"] = self.attempts
            elif name in ("waitable", "cancel_requested"):
                if getattr(self, name):
                    out[name] = True
            elif name in self._has:
                out[name] = getattr(self, name)
        if self.fields:
            out["fields"] = dict(self.fields)
        return out


def _take_fields(job: Job, fields: Dict[str, str]) -> None:
    for k, v in fields.items():
        if k == "handler":
            job._set("handler", v)
        elif k == "payload":
            job._set("payload", _maybe_json(v))
        elif k == "attempt":
            job.attempts = _int(v)
        elif k in ("last_error", "reason", "retry", "cancelled_by", "cancel_reason"):
            job._set(k, v)
        elif k == "errors":
            e = _maybe_json(v)
            if isinstance(e, list) and all(isinstance(x, dict) for x in e):
                job._set("errors", e)
            else:
                job.fields[k] = v
        elif k in ("priority", "max_attempts"):
            job._set(k, _int(v))
        elif k == "waitable":
            job.waitable = v == "1"
        elif k == "cancelled_ms":
            job._set("finished_ms", _int(v))
        elif k not in ("id", "raw_hex"):
            job.fields[k] = v


def _record(text: str) -> Dict[str, Any]:
    try:
        o = json.loads(text)
    except ValueError:
        return {}
    return o if isinstance(o, dict) else {}


def shape(queue: str, id: str, reply: List[Any]) -> Tuple[Optional[Job], Dict[str, Any]]:
    """A job from job.lua's reply, and the raw parts (entry, priority) cancel needs."""
    raw = dict(zip(reply[0::2], reply[1::2])) if reply else {}
    state = raw.get("state")
    if not state:
        return None, raw
    job = Job(queue=queue, id=id, state=state)
    if state == "completed":
        o = _record(raw["record"])
        if o.get("result") is not None:
            job._set("result", o["result"])
        if isinstance(o.get("attempt"), int):
            job.attempts = o["attempt"]
        if isinstance(o.get("finished_ms"), int):
            job._set("finished_ms", o["finished_ms"])
    elif state in ("dead", "cancelled", "delayed"):
        rec = {k: v for k, v in _record(raw["record"]).items() if isinstance(v, str)}
        _take_fields(job, rec)
        if "score" in raw:
            job._set("finished_ms" if state == "dead" else "run_at_ms", _int(raw["score"]))
    elif state in ("active", "ready"):
        f = raw.get("fields") or []
        _take_fields(job, dict(zip(f[0::2], f[1::2])))
        job._set("priority", _int(raw["priority"]))
        if state == "active" and "progress" in raw:
            job._set("progress", _maybe_json(raw["progress"]))
        if state == "active" and "cancel" in raw:
            job.cancel_requested = True
            mark = _record(raw["cancel"])
            if isinstance(mark.get("by"), str):
                job._set("cancelled_by", mark["by"])
            if isinstance(mark.get("reason"), str):
                job._set("cancel_reason", mark["reason"])
    return job, raw


def lookup_keys(queue: str, id: str) -> List[str]:
    names = ["results_data", "dead_jobs", "dead", "delayed_jobs", "delayed"]
    keys = [key(queue, n) for n in names] + [key(queue, "unique", id=id)]
    keys += [key(queue, n) for n in ("entries", "results", "progress", "cancelled_jobs", "cancel")]
    return keys + [stream_key(queue, p) for p in range(10)]


# ---- operations, each a generator of steps ----

Ops = Iterator[tuple]


class QueueCache:
    """What a client knows of each queue it enqueues to: its schema was checked (once), and
    whether its events are on (read again after a second, as forq's own producers do)."""

    def __init__(self) -> None:
        self.checked: set = set()
        self.events: Dict[str, Tuple[bool, float]] = {}

    def events_on(self, queue: str) -> Ops:
        seen = self.events.get(queue)
        if seen and time.monotonic() - seen[1] < 1.0:
            return seen[0]
        r = yield ("cmd", ["HMGET", key(queue, "meta"), "schema", "events"])
        schema, events = (r or [None, None])[:2]
        if schema is not None and str(schema) != str(SCHEMA):
            raise SchemaMismatch(
                "queue %s was written with protocol schema %s; this client speaks %d: use a "
                "client of the release its workers run" % (queue, schema, SCHEMA))
        on = _int(events or 0) > 0
        self.events[queue] = (on, time.monotonic())
        return on


def enqueue(cache: QueueCache, p: Plan) -> Ops:
    on = yield from cache.events_on(p.queue)
    reply = yield p.step(on)
    return Enqueued(*p.job_id(reply))


def _bulk_step(queue: str, priority: int, fields: List[List[str]]) -> tuple:
    return ("script", "enqueue_many", [stream_key(queue, priority), key(queue, "meta"),
                                       key(queue, "events")], [str(priority), _ENCODE(fields)])


def enqueue_many(cache: QueueCache, queue: str, jobs: List[Any]) -> Ops:
    """One outcome per job, in order: (id, duplicate), or the error that refused it. Plain jobs
    go in enqueue_many.lua calls of up to 1,000 jobs (or about 4 MiB) per priority, the others
    one script call each; 1,000 jobs a round trip, made while the round trip before runs (a
    "pipes" step: a driver may send each round as soon as it is made)."""
    check_queue(queue)
    yield from cache.events_on(queue)  # (the schema check; the scripts read events themselves)
    out: List[Any] = [None] * len(jobs)
    # Per round: per step, the jobs it enqueues: (at, id suffix) for a bulk of plain jobs, or
    # (at, plan) for a script call of its own.
    rounds: List[List[Any]] = []
    encode, good, most = _ENCODE, _GOOD_HANDLERS, _PAYLOAD_MAX // 4

    def one_round(batch: List[Any], first: int) -> List[tuple]:
        steps: List[tuple] = []
        owners: List[tuple] = []
        # Plain jobs by priority, not yet in a step: their places in `jobs`, their fields, their
        # payloads' sizes.
        plain: Dict[int, Tuple[List[int], List[List[str]], List[int]]] = {}

        def flush() -> None:  # the plain jobs so far, in calls of about 4 MiB at most
            for priority, (ats, fields, sizes) in plain.items():
                suffix = "-p%d" % priority if priority else ""
                size, begun = 0, 0
                for n, length in enumerate(sizes):
                    size += length
                    if size > 4 << 20 or n == len(sizes) - 1:
                        steps.append(_bulk_step(queue, priority, fields[begun:n + 1]))
                        owners.append(("bulk", ats[begun:n + 1], suffix))
                        begun, size = n + 1, 0
            plain.clear()

        ats0: List[int] = []
        fields0: List[List[str]] = []
        sizes0: List[int] = []
        plain[0] = (ats0, fields0, sizes0)
        for at, j in enumerate(batch, first):
            # The common bulk job, {"handler": <a name already checked>, "payload": ...}, checked
            # here at a fraction of plan()'s cost (the same checks: the name, the JSON, the
            # size); any other job, or one that fails a check, goes through plan() for its words.
            if type(j) is dict and "payload" in j:
                n = len(j)
                if n == 1 or (n == 2 and type(j.get("handler")) is str and j["handler"] in good):
                    try:
                        text = encode(j["payload"])
                    except (TypeError, ValueError):
                        text = None
                    if text is not None and len(text) <= most:
                        ats0.append(at)
                        fields0.append(["handler", j["handler"], "payload", text] if n == 2
                                       else ["payload", text])
                        sizes0.append(len(text))
                        continue
            try:
                p = plan(queue, _queue_checked=True, **j)
            except InvalidJob as e:
                out[at] = e
                continue
            except TypeError as e:
                out[at] = InvalidJob("not a job: %s" % e)
                continue
            if p.kind == "xadd":
                group = plain.setdefault(p.priority, ([], [], []))
                group[0].append(at)
                group[1].append(p.fields)
                group[2].append(p.size)
            else:  # its own script call, after the plain jobs before it (so they keep order)
                if any(g[0] for g in plain.values()):
                    flush()
                    ats0, fields0, sizes0 = [], [], []
                    plain[0] = (ats0, fields0, sizes0)
                steps.append(p.step(False))
                owners.append(("one", at, p))
        plain = {k: g for k, g in plain.items() if g[0]}
        flush()
        rounds.append(owners)
        return steps

    replies = yield ("pipes", (one_round(jobs[start:start + 1000], start)
                               for start in range(0, len(jobs), 1000)))
    made = tuple.__new__  # (an Enqueued from a pair, at a third of its constructor's cost)
    for owners, got in zip(rounds, replies):
        for owned, r in zip(owners, got):
            if owned[0] == "one":  # a script call of its own
                _, at, p = owned
                out[at] = ForqError(str(r)) if isinstance(r, Exception) else \
                    made(Enqueued, p.job_id(r))
            elif isinstance(r, Exception):  # refused (full, read-only): those jobs' outcome
                for at in owned[1]:
                    out[at] = ForqError(str(r))
            else:
                suffix = owned[2]
                for at, entry in zip(owned[1], r):
                    out[at] = made(Enqueued, (entry + suffix, False))
    return out


def get_job(queue: str, id: str) -> Ops:
    check_queue(queue)
    if not isinstance(id, str) or not id:
        raise InvalidJob("id must be 1 to 256 bytes")
    reply = yield ("script", "job", lookup_keys(queue, id), [id, GROUP])
    job, raw = shape(queue, id, reply)
    if job is not None and job.state == "index":
        ms = yield ("script", "results", [key(queue, "results")], ["find", id])
        if ms is None:
            return None, raw
        job.state = "completed"
        job.attempts = 1
        job._set("finished_ms", int(ms))
    return job, raw


# What a wait rides out (Redis restarting, failing over, loading its data, a cluster moving a
# slot): it tries again until its deadline, growing the pause from 0.1 s to 1 s.
_PASSING = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError,
            TimeoutError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


def _again(make: Any, until: float) -> Ops:
    pause = 0.1
    while True:
        try:
            return (yield from make())
        except _PASSING:
            if time.monotonic() + pause >= until:
                raise
            yield ("sleep", pause)
            pause = min(pause * 2, 1.0)


def wait(queue: str, id: str, timeout_s: float) -> Ops:
    """The job once it has ended, or as it stands when timeout_s runs out; None if no queue knows
    it. The same steps as forq::client::wait (docs/protocol.md, "Wait"); Redis going away
    meanwhile (a restart, a failover) is waited out until the deadline."""
    check_queue(queue)
    until = time.monotonic() + max(0.0, timeout_s)
    finished = key(queue, "finished")

    def look() -> Ops:
        # Where the finished stream stands, then the job: an end announced after that id is
        # news; one before it is seen by the look.
        top = yield ("cmd", ["XREVRANGE", finished, "+", "-", "COUNT", "1"])
        found, _ = yield from get_job(queue, id)
        return (top[0][0] if top else "0-0"), found

    last, job = yield from _again(look, until)
    looked = time.monotonic()
    again = 0.1
    while True:
        if job is None or job.terminal:
            return job
        left = until - time.monotonic()
        if left <= 0:
            return job
        news = False
        if job.waitable:
            block = max(1, min(1000, int(left * 1000)))

            def read() -> Ops:
                return (yield ("block", block, ["XREAD", "COUNT", "1000", "BLOCK", str(block),
                                                "STREAMS", finished, last]))
            try:
                r = yield from read()
            except _PASSING:
                # The read's connection went: look again (from where the stream stands now).
                last, job = yield from _again(look, until)
                looked = time.monotonic()
                continue
            for _stream, entries in (r or []):
                for entry_id, kv in entries:
                    last = entry_id
                    if pairs(kv).get("id") == id:
                        news = True
            if not news and time.monotonic() - looked < 5:
                continue
        else:
            yield ("sleep", min(again, left))
            again = min(again * 2, 1.0)
        job, _ = yield from _again(lambda: get_job(queue, id), until)
        looked = time.monotonic()


def cancel(queue: str, id: str, by: str, reason: str) -> Ops:
    """("cancelled" | "requested" | "already_requested" | "terminal", the job), or None."""
    check_queue(queue)
    if not isinstance(by, str) or not 1 <= len(by.encode()) <= 128:
        raise InvalidJob("who cancels: 1 to 128 bytes of UTF-8 text")
    if not isinstance(reason, str) or len(reason.encode()) > 1000:
        raise InvalidJob("the reason: at most 1,000 bytes of UTF-8 text")
    for _ in range(20):
        job, raw = yield from get_job(queue, id)
        if job is None:
            return None
        if job.terminal:
            return "terminal", job
        delayed = job.state == "delayed"
        record = ""
        if job.state == "ready":
            # The entry's own fields, as cancelled:jobs keeps them (dead:jobs' shape).
            f = raw.get("fields") or []
            rec = {k: v for k, v in zip(f[0::2], f[1::2])}
            rec["id"] = id
            rec["attempt"] = rec.get("attempt", "0")
            rec["priority"] = raw.get("priority", "0")
            record = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
        stream = key(queue, "stream") if delayed else stream_key(queue, int(raw["priority"]))
        keys = [key(queue, n) for n in ("cancel", "cancelled", "cancelled_jobs", "stats",
                                        "finished", "delayed", "delayed_jobs", "entries")]
        keys += [stream, key(queue, "meta"), key(queue, "events")]
        args = [GROUP, id, str(now_ms()), by, reason, "delayed" if delayed else "entry",
                "" if delayed else raw["entry"], record, "1" if job.waitable else "0"]
        r = yield ("script", "cancel", keys, args)
        what = r[0] if r else ""
        if what == "moved":
            continue
        outcome = ("cancelled" if what == "cancelled" else
                   "already_requested" if len(r) > 1 else "requested")
        now, _ = yield from get_job(queue, id)
        return outcome, (now or job)
    raise ForqError("the job kept moving while it was cancelled (20 tries); try again")


def counts(queue: str) -> Ops:
    """Ready, active, delayed, dead, cancelled, completed (a running total) and paused."""
    check_queue(queue)
    steps = [("cmd", ["XINFO", "GROUPS", stream_key(queue, p)]) for p in range(10)]
    steps += [("cmd", ["XLEN", stream_key(queue, p)]) for p in range(10)]
    steps += [("cmd", ["ZCARD", key(queue, "delayed")]), ("cmd", ["ZCARD", key(queue, "dead")]),
              ("cmd", ["ZCARD", key(queue, "cancelled")]),
              ("cmd", ["HGET", key(queue, "stats"), "completed"]),
              ("cmd", ["HGET", key(queue, "meta"), "paused"])]
    r = yield ("pipe", steps)
    ready = active = 0
    for p in range(10):
        length = r[10 + p] if isinstance(r[10 + p], int) else 0
        mine = None
        for g in (r[p] if isinstance(r[p], list) else []):
            info = pairs(g)
            if info.get("name") == GROUP:
                mine = info
        if mine is None:  # no consumer started on it: every entry is ready
            ready += length
            continue
        pending = _int(mine.get("pending", 0))
        active += pending
        lag = mine.get("lag")
        ready += max(0, _int(lag) if lag is not None else length - pending)
    return {"queue": queue, "ready": ready, "active": active, "delayed": _int(r[20] or 0),
            "dead": _int(r[21] or 0), "cancelled": _int(r[22] or 0),
            "completed": _int(r[23] or 0), "paused": r[24] == "1"}


def set_paused(queue: str, paused: bool) -> Ops:
    check_queue(queue)
    yield ("pipe", [("cmd", ["HSET", key(queue, "meta"), "paused", "1" if paused else "0"]),
                    ("cmd", ["XADD", key(queue, "wake"), "MAXLEN", "~", "1000", "*", "meta",
                             "changed"])])


# ---- URLs as forq takes them (docs/configuration.md, "Redis URLs") ----

@dataclass
class Url:
    kind: str  # plain (redis-py's from_url takes it), sentinel, cluster
    url: str = ""
    tls: bool = False
    nodes: List[Tuple[str, int]] = field(default_factory=list)
    master: str = ""
    username: Optional[str] = None
    password: Optional[str] = None
    db: int = 0


def parse_url(url: str) -> Url:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ForqError("not a Redis URL: %s (redis://, rediss://, unix://, redis-sentinel://, "
                        "redis-cluster://)" % _redact(url))
    if scheme in ("redis", "rediss", "unix"):
        return Url("plain", url=url)
    if scheme not in ("redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster"):
        raise ForqError("unknown URL scheme %s://: use redis://, rediss://, unix://, "
                        "redis-sentinel:// or redis-cluster://" % scheme)
    u = Url("sentinel" if "sentinel" in scheme else "cluster", tls=scheme.startswith("rediss"))
    rest, _, query = rest.partition("?")
    creds, at, hosts = rest.rpartition("@")
    if at:
        user, colon, pw = creds.partition(":")
        u.username = unquote(user) or None
        u.password = unquote(pw) if colon else None
    hosts, slash, path = hosts.partition("/")
    default = 26379 if u.kind == "sentinel" else 6379
    for h in hosts.split(","):
        if not h:
            raise ForqError("%s: a host is empty" % _redact(url))
        if h.startswith("["):
            host, _, port = h[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = h.rpartition(":") if ":" in h else (h, "", "")
        u.nodes.append((host, int(port) if port else default))
    if u.kind == "sentinel":
        u.master = unquote(path)
        if not u.master:
            raise ForqError("%s: name the primary the sentinels watch: "
                            "redis-sentinel://host:port/NAME" % _redact(url))
    q = parse_qs(query)
    if "db" in q:
        u.db = int(q["db"][0])
    return u


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
