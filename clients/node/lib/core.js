'use strict';
// The protocol's facts (from the copy of src/protocol/ in ../protocol), the checks a job must
// pass in the words of `forq enqueue`, and a job's shape from job.lua's reply. No Redis here.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const DIR = path.join(__dirname, '..', 'protocol');
const PROTOCOL = JSON.parse(fs.readFileSync(path.join(DIR, 'protocol.json'), 'utf8'));
const SCHEMA = PROTOCOL.schema;
const GROUP = PROTOCOL.group;
const LIMITS = PROTOCOL.limits;
const NAME = new RegExp(LIMITS.name_pattern);
const NAME_RULE = 'use 1 to 128 characters of A-Z a-z 0-9 _ . : -';
const GENERATED = /^\d+-\d+$|^\d+-\d+-p\d+$|^\d+-d\d+$/;
const UNIQUE_TTL = String(LIMITS.unique_ttl_s);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

class ForqError extends Error {
  constructor(message) { super(message); this.name = 'ForqError'; }
}
// The job (queue name, id, option) breaks a rule of docs/protocol.md; nothing was added.
class InvalidJob extends ForqError {
  constructor(message) { super(message); this.name = 'InvalidJob'; }
}
// The queue in Redis was written with a protocol schema this client does not speak.
class SchemaMismatch extends ForqError {
  constructor(message) { super(message); this.name = 'SchemaMismatch'; }
}

const SCRIPTS = {};
for (const name of ['added', 'enqueue_many', 'enqueue_unique', 'enqueue_delayed', 'job', 'results', 'cancel']) {
  const source = fs.readFileSync(path.join(DIR, name + '.lua'), 'utf8');
  SCRIPTS[name] = { name, source, sha: crypto.createHash('sha1').update(source).digest('hex') };
}

function key(queue, name, parts = {}) {
  let text = PROTOCOL.keys[name].replace('<queue>', queue);
  for (const [k, v] of Object.entries(parts)) text = text.replace(`<${k}>`, String(v));
  return text;
}
const streamKeys = new Map();
function streamKey(queue, priority) {
  const k = `${priority}:${queue}`;
  let s = streamKeys.get(k);
  if (s === undefined) {
    s = priority === 0 ? key(queue, 'stream') : key(queue, 'stream_priority', { priority });
    if (streamKeys.size > 1024) streamKeys.clear();
    streamKeys.set(k, s);
  }
  return s;
}

// One enqueue_many.lua call for plain jobs of one priority.
function bulkStep(queue, priority, plans) {
  return { script: 'enqueue_many', keys: [streamKey(queue, priority), key(queue, 'meta'), key(queue, 'events')],
    args: [String(priority), JSON.stringify(plans.map((p) => p.fields))] };
}

function checkQueue(queue) {
  if (typeof queue !== 'string' || !NAME.test(queue) || queue.includes('\n'))
    throw new InvalidJob(`queue name "${queue}" is not allowed: ${NAME_RULE}`);
  return queue;
}

function bounds(name, value, lo, hi, unit = '') {
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new InvalidJob(`${name} "${value}" is not allowed: use a whole number from ${lo} to ${hi}${unit}`);
  if (value < lo || value > hi)
    throw new InvalidJob(`${name} ${value} is not allowed: use a whole number from ${lo} to ${hi}${unit}`);
  return value;
}

function hasControl(s) {
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

const RETRY_RULE = 'use attempts (a whole number from 1 to 1000), fixed or exponential, durations ' +
  'with a unit (ms, s, m, h, d; 1ms to 7d: the first is the base wait, the second or one ' +
  "written max=... the cap) and jitter or nojitter, separated by '/', e.g. 10/fixed/30s or " +
  'exponential/2s/10m';
const UNITS = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000], ['ms', 1]];
const UNIT_MS = Object.fromEntries(UNITS);
const DURATION = /^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)$/;
const BACKOFF_HI = LIMITS.backoff_ms[1];

function show(ms) {
  if (ms <= 0) return `${ms}ms`;
  for (const [name, size] of UNITS) if (ms % size === 0) return `${ms / size}${name}`;
  return `${ms}ms`;
}

// A retry policy (docs/retries.md) as forq writes it, or InvalidJob in forq's words.
function normaliseRetry(text) {
  if (typeof text !== 'string')
    throw new InvalidJob('retry must be text, e.g. "10/fixed/30s" (docs/retries.md)');
  const refuse = (why) => new InvalidJob(`retry "${text}": ${why}`);
  if (text === '') throw refuse('empty; ' + RETRY_RULE);
  let attempts = null, exponential = null, base = null, cap = null, jitter = null;
  for (const t of text.split('/')) {
    if (/^[0-9]+$/.test(t)) {
      if (attempts !== null) throw refuse('the number of attempts is given twice');
      const n = Number(t);
      if (n < 1 || n > 1000)
        throw refuse(`attempts ${BigInt(t)} is not allowed: use a whole number from 1 to 1000`);
      attempts = n;
    } else if (t === 'fixed' || t === 'exponential') {
      if (exponential !== null) throw refuse('fixed or exponential is given twice');
      exponential = t === 'exponential';
    } else if (t === 'jitter' || t === 'nojitter') {
      if (jitter !== null) throw refuse('jitter or nojitter is given twice');
      jitter = t === 'jitter';
    } else {
      const m = DURATION.exec(t.startsWith('max=') ? t.slice(4) : t);
      if (!m) throw refuse(`"${[...t].slice(0, 40).join('')}" is not a part of a retry policy: ${RETRY_RULE}`);
      const ms = Number(m[1]) * UNIT_MS[m[2]];
      const isCap = t.startsWith('max=') || base !== null;
      if (isCap && cap !== null) throw refuse('the cap is given twice');
      if (ms < 1) throw refuse(`${t} is under 1ms`);
      const what = isCap ? 'the cap' : 'the base wait';
      if (ms > BACKOFF_HI) throw refuse(`${what} ${t} is not allowed: use 1ms to 7d`);
      const rounded = Math.floor(ms + 0.5);
      if (rounded > BACKOFF_HI) throw refuse(`${what} ${show(rounded)} is not allowed: use 1ms to 7d`);
      if (isCap) cap = rounded; else base = rounded;
    }
  }
  if (base !== null && cap !== null && cap < base)
    throw refuse(`the cap ${show(cap)} is shorter than the base wait ${show(base)}`);
  const parts = [];
  if (attempts !== null) parts.push(String(attempts));
  if (exponential !== null) parts.push(exponential ? 'exponential' : 'fixed');
  if (base !== null) parts.push(show(base));
  if (cap !== null) parts.push((base !== null ? '' : 'max=') + show(cap));
  if (jitter !== null) parts.push(jitter ? 'jitter' : 'nojitter');
  return parts.join('/');
}

function toJson(value) {
  let text;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw new InvalidJob(`payload is not JSON: ${e.message}`);
  }
  if (typeof text !== 'string') throw new InvalidJob('payload is not JSON: it has no JSON form');
  return text;
}

function ms(value) {
  if (value instanceof Date) return value.getTime();
  return value;
}

// How one job goes into Redis: kind xadd (a plain XADD, or added.lua while the queue's events
// are on), unique (enqueue_unique.lua) or delayed (enqueue_delayed.lua).
class Plan {
  constructor(kind, queue, priority, fields, id = null, runAtMs = null, size = 0) {
    this.kind = kind;
    this.queue = queue;
    this.priority = priority;
    this.fields = fields;
    this.id = id;
    this.runAtMs = runAtMs;
    this.size = size; // the payload's JSON, in bytes
  }
  // {cmd: [...]} or {script, keys, args}
  step(eventsOn) {
    const q = this.queue;
    const stream = streamKey(q, this.priority);
    if (this.kind === 'xadd') {
      if (eventsOn)
        return { script: 'added', keys: [stream, key(q, 'meta'), key(q, 'events')],
          args: [String(this.priority), ...this.fields] };
      return { cmd: ['xadd', stream, '*', ...this.fields] };
    }
    if (this.kind === 'unique')
      return { script: 'enqueue_unique',
        keys: [key(q, 'unique', { id: this.id }), stream, key(q, 'meta'), key(q, 'events')],
        args: [this.id, UNIQUE_TTL, ...this.fields] };
    const keys = [key(q, 'delayed'), key(q, 'delayed_jobs'), key(q, 'stats'), key(q, 'wake')];
    if (this.id !== null) keys.push(key(q, 'unique', { id: this.id }));
    keys.push(key(q, 'meta'), key(q, 'events'));
    return { script: 'enqueue_delayed', keys,
      args: [String(this.runAtMs), this.id ?? '', UNIQUE_TTL, JSON.stringify(this.record())] };
  }
  record() {
    const rec = {};
    for (let i = 0; i + 1 < this.fields.length; i += 2) rec[this.fields[i]] = this.fields[i + 1];
    if (this.priority) rec.priority = String(this.priority);
    return rec;
  }
  // {id, duplicate} from the step's reply.
  jobId(reply) {
    if (this.kind === 'xadd') {
      if (typeof reply !== 'string') throw new ForqError(`Redis answered the enqueue with ${JSON.stringify(reply)}`);
      return { id: reply + (this.priority ? `-p${this.priority}` : ''), duplicate: false };
    }
    if (!Array.isArray(reply) || reply.length !== 2)
      throw new ForqError(`Redis answered the enqueue with ${JSON.stringify(reply)}`);
    return { id: this.kind === 'unique' ? this.id : reply[1], duplicate: reply[0] === 'duplicate' };
  }
}

// Handler names that passed the check (a bulk of one handler checks it once).
const GOOD_HANDLERS = new Set();

// The common bulk job, {handler: <a name already checked>, payload}, as a plain job's plan,
// at a fraction of plan()'s cost (the same checks: the name, the JSON, the size); null for any
// other job, or one that fails a check (plan() then says why, in its words).
function quickPlan(queue, job) {
  if (job === null || typeof job !== 'object' || !('payload' in job)) return null;
  const keys = Object.keys(job);
  let fields;
  if (keys.length === 1) fields = [];
  else if (keys.length === 2 && GOOD_HANDLERS.has(job.handler)) fields = ['handler', job.handler];
  else return null;
  let text;
  try { text = JSON.stringify(job.payload); } catch { return null; }
  if (typeof text !== 'string' || text.length * 3 > LIMITS.payload_bytes) return null;
  fields.push('payload', text);
  return new Plan('xadd', queue, 0, fields, null, null, text.length);
}

const JOB_OPTIONS = new Set(['handler', 'payload', 'id', 'priority', 'attempts', 'retry', 'delayMs',
  'runAt', 'waitable']);

// Checks a job as `forq enqueue` does and says how it goes into Redis.
function plan(queue, job = {}, queueChecked = false) {
  if (!queueChecked) checkQueue(queue);
  for (const k of Object.keys(job))
    if (!JOB_OPTIONS.has(k))
      throw new InvalidJob(`unknown option "${k}": the options are ${[...JOB_OPTIONS].join(', ')}`);
  const { handler, payload, id, priority = 0, attempts, retry, delayMs, runAt, waitable } = job;
  const fields = [];
  if (handler !== undefined && handler !== null) {
    if (!GOOD_HANDLERS.has(handler)) {
      if (typeof handler !== 'string' || !NAME.test(handler) || handler.includes('\n'))
        throw new InvalidJob(`handler "${handler}" is not allowed: ${NAME_RULE}`);
      if (GOOD_HANDLERS.size > 1000) GOOD_HANDLERS.clear();
      GOOD_HANDLERS.add(handler);
    }
    fields.push('handler', handler);
  }
  const text = toJson(payload);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > LIMITS.payload_bytes)
    throw new InvalidJob(`payload is ${size} bytes; the limit is ${LIMITS.payload_bytes}`);
  fields.push('payload', text);
  if (id !== undefined && id !== null) {
    if (typeof id !== 'string') throw new InvalidJob('id must be text (1 to 256 bytes of UTF-8)');
    const n = Buffer.byteLength(id, 'utf8');
    if (n < 1 || n > 256) throw new InvalidJob('id must be 1 to 256 bytes');
    if (LONE_SURROGATE.test(id)) throw new InvalidJob('id must be UTF-8 text');
    if (hasControl(id))
      throw new InvalidJob('id must not hold control characters (newline, tab, NUL, escape, ...): it is printed in lines, logs and terminals');
    if (GENERATED.test(id))
      throw new InvalidJob(`id "${id}" has the shape of an id forq generates (<ms>-<n>, <ms>-<n>-p<N>, <ms>-d<n>), so it could name another job: choose another`);
  }
  bounds('priority', priority, LIMITS.priority[0], LIMITS.priority[1], ' (higher runs first)');
  const policy = retry !== undefined && retry !== null ? normaliseRetry(retry) : null;
  if (attempts !== undefined && attempts !== null) {
    bounds('attempts', attempts, LIMITS.max_attempts[0], LIMITS.max_attempts[1]);
    fields.push('max_attempts', String(attempts));
  }
  if (policy !== null) fields.push('retry', policy);
  if (waitable) fields.push('waitable', '1');
  const [lo, hi] = LIMITS.delay_ms;
  let at = null;
  if (delayMs !== undefined && delayMs !== null && runAt !== undefined && runAt !== null)
    throw new InvalidJob('give delayMs or runAt, not both');
  if (delayMs !== undefined && delayMs !== null) {
    const d = bounds('delay_ms', delayMs, lo, hi, ' ms (one year)');
    if (d > 0) at = Date.now() + d;
  } else if (runAt !== undefined && runAt !== null) {
    at = ms(runAt);
    if (typeof at !== 'number' || !Number.isInteger(at))
      throw new InvalidJob(`run_at_ms "${runAt}" is not allowed: use a time (ms since the Unix epoch, or a Date)`);
    if (at > Date.now() + hi)
      throw new InvalidJob(`run_at_ms ${at} is more than a year from now: a job may wait at most ${hi} ms`);
    if (at <= Date.now()) at = null;
  }
  const hasId = id !== undefined && id !== null;
  if (at !== null) return new Plan('delayed', queue, priority, fields, hasId ? id : null, at);
  if (hasId) return new Plan('unique', queue, priority, fields, id);
  return new Plan('xadd', queue, priority, fields, null, null, size);
}

// ---- a job as forq shows it (docs/operations.md, "One shape for a job") ----

function toInt(text) {
  const m = /^\s*(-?\d+)/.exec(String(text));
  return m ? Number(m[1]) : 0;
}
function maybeJson(text) {
  try { return JSON.parse(text); } catch { return text; }
}
function pairs(list) {
  const o = {};
  for (let i = 0; i + 1 < (list || []).length; i += 2) o[list[i]] = list[i + 1];
  return o;
}
function record(text) {
  try {
    const o = JSON.parse(text);
    return o && typeof o === 'object' && !Array.isArray(o) ? o : {};
  } catch { return {}; }
}

function takeFields(job, fields, other) {
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v !== 'string') continue;
    if (k === 'handler') job.handler = v;
    else if (k === 'payload') job.payload = maybeJson(v);
    else if (k === 'attempt') job.attempts = toInt(v);
    else if (['last_error', 'reason', 'retry', 'cancelled_by', 'cancel_reason'].includes(k)) job[k] = v;
    else if (k === 'errors') {
      const e = maybeJson(v);
      if (Array.isArray(e) && e.every((x) => x && typeof x === 'object' && !Array.isArray(x))) job.errors = e;
      else other[k] = v;
    } else if (k === 'priority' || k === 'max_attempts') job[k] = toInt(v);
    else if (k === 'waitable') { if (v === '1') job.waitable = true; }
    else if (k === 'cancelled_ms') job.finished_ms = toInt(v);
    else if (k !== 'id' && k !== 'raw_hex') other[k] = v;
  }
}

const ORDER = ['queue', 'id', 'state', 'handler', 'payload', 'attempts', 'priority', 'max_attempts',
  'retry', 'result', 'last_error', 'reason', 'errors', 'run_at_ms', 'finished_ms', 'waitable',
  'cancel_requested', 'cancelled_by', 'cancel_reason', 'progress', 'fields'];

// A job from job.lua's reply ({job, raw}: raw holds the entry and priority cancel needs).
function shape(queue, id, reply) {
  const raw = pairs(reply);
  if (!raw.state) return { job: null, raw };
  const job = { queue, id, state: raw.state, attempts: 0 };
  const other = {};
  const state = raw.state;
  if (state === 'completed') {
    const o = record(raw.record);
    if (o.result !== undefined && o.result !== null) job.result = o.result;
    if (Number.isInteger(o.attempt)) job.attempts = o.attempt;
    if (Number.isInteger(o.finished_ms)) job.finished_ms = o.finished_ms;
  } else if (state === 'dead' || state === 'cancelled' || state === 'delayed') {
    takeFields(job, record(raw.record), other);
    if (raw.score !== undefined) job[state === 'dead' ? 'finished_ms' : 'run_at_ms'] = toInt(raw.score);
  } else if (state === 'active' || state === 'ready') {
    takeFields(job, pairs(raw.fields), other);
    job.priority = toInt(raw.priority);
    if (state === 'active' && raw.progress !== undefined) job.progress = maybeJson(raw.progress);
    if (state === 'active' && raw.cancel !== undefined) {
      job.cancel_requested = true;
      const mark = record(raw.cancel);
      if (typeof mark.by === 'string') job.cancelled_by = mark.by;
      if (typeof mark.reason === 'string') job.cancel_reason = mark.reason;
    }
  }
  if (Object.keys(other).length) job.fields = other;
  const ordered = {};
  for (const k of ORDER) if (job[k] !== undefined) ordered[k] = job[k];
  return { job: ordered, raw };
}

function lookupKeys(queue, id) {
  const keys = ['results_data', 'dead_jobs', 'dead', 'delayed_jobs', 'delayed'].map((n) => key(queue, n));
  keys.push(key(queue, 'unique', { id }));
  for (const n of ['entries', 'results', 'progress', 'cancelled_jobs', 'cancel']) keys.push(key(queue, n));
  for (let p = 0; p <= 9; p++) keys.push(streamKey(queue, p));
  return keys;
}

function isTerminal(job) {
  return job.state === 'completed' || job.state === 'dead' || job.state === 'cancelled';
}

// ---- URLs as forq takes them (docs/configuration.md, "Redis URLs") ----

function redact(url) {
  return String(url).replace(/(:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

function parseUrl(url) {
  const at = url.indexOf('://');
  if (at < 0)
    throw new ForqError(`not a Redis URL: ${redact(url)} (redis://, rediss://, unix://, redis-sentinel://, redis-cluster://)`);
  const scheme = url.slice(0, at);
  let rest = url.slice(at + 3);
  if (scheme === 'redis' || scheme === 'rediss') return { kind: 'plain', url };
  if (scheme === 'unix') {
    const [p, query = ''] = rest.split('?');
    const q = new URLSearchParams(query);
    return { kind: 'unix', path: p, db: Number(q.get('db') || 0) };
  }
  if (!['redis-sentinel', 'rediss-sentinel', 'redis-cluster', 'rediss-cluster'].includes(scheme))
    throw new ForqError(`unknown URL scheme ${scheme}://: use redis://, rediss://, unix://, redis-sentinel:// or redis-cluster://`);
  const u = { kind: scheme.includes('sentinel') ? 'sentinel' : 'cluster', tls: scheme.startsWith('rediss'),
    nodes: [], master: '', username: undefined, password: undefined, db: 0 };
  let query = '';
  const qm = rest.indexOf('?');
  if (qm >= 0) { query = rest.slice(qm + 1); rest = rest.slice(0, qm); }
  const atSign = rest.lastIndexOf('@');
  if (atSign >= 0) {
    const creds = rest.slice(0, atSign);
    rest = rest.slice(atSign + 1);
    const colon = creds.indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? creds.slice(0, colon) : creds);
    if (user) u.username = user;
    if (colon >= 0) u.password = decodeURIComponent(creds.slice(colon + 1));
  }
  const slash = rest.indexOf('/');
  const hosts = slash >= 0 ? rest.slice(0, slash) : rest;
  const pathPart = slash >= 0 ? rest.slice(slash + 1) : '';
  const dflt = u.kind === 'sentinel' ? 26379 : 6379;
  for (const h of hosts.split(',')) {
    if (!h) throw new ForqError(`${redact(url)}: a host is empty`);
    let host, port;
    if (h.startsWith('[')) {
      const end = h.indexOf(']');
      host = h.slice(1, end);
      port = h.slice(end + 1).replace(/^:/, '');
    } else {
      const c = h.lastIndexOf(':');
      host = c >= 0 ? h.slice(0, c) : h;
      port = c >= 0 ? h.slice(c + 1) : '';
    }
    u.nodes.push({ host, port: port ? Number(port) : dflt });
  }
  if (u.kind === 'sentinel') {
    u.master = decodeURIComponent(pathPart);
    if (!u.master)
      throw new ForqError(`${redact(url)}: name the primary the sentinels watch: redis-sentinel://host:port/NAME`);
  }
  const q = new URLSearchParams(query);
  if (q.get('db')) u.db = Number(q.get('db'));
  return u;
}

module.exports = {
  PROTOCOL, SCHEMA, GROUP, LIMITS, SCRIPTS, ForqError, InvalidJob, SchemaMismatch, key, streamKey,
  checkQueue, normaliseRetry, plan, quickPlan, Plan, bulkStep, shape, lookupKeys, isTerminal, parseUrl, pairs, toInt,
};
