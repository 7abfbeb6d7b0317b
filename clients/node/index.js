'use strict';
// forq's Node client (docs/clients.md): enqueue, look up, wait for and cancel forq jobs from a
// Node backend, on ioredis. Types: index.d.ts.
const Redis = require('ioredis');
const core = require('./lib/core');

const { ForqError, InvalidJob, SchemaMismatch, SCRIPTS, GROUP, SCHEMA, key, streamKey } = core;

// An ioredis client for a URL as forq takes it.
function connect(url, { sentinelPassword, redisOptions = {} } = {}) {
  const u = core.parseUrl(url);
  if (u.kind === 'plain') return new Redis(u.url, redisOptions);
  if (u.kind === 'unix') return new Redis({ path: u.path, db: u.db, ...redisOptions });
  const tls = u.tls ? { tls: {} } : {};
  const creds = { username: u.username, password: u.password };
  if (u.kind === 'cluster')
    return new Redis.Cluster(u.nodes, { redisOptions: { ...creds, ...tls, ...redisOptions } });
  return new Redis({ sentinels: u.nodes, name: u.master, db: u.db, sentinelPassword,
    enableTLSForSentinelMode: u.tls, ...creds, ...tls, ...redisOptions });
}

const isNoScript = (e) => e && String(e.message || e).startsWith('NOSCRIPT');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Client {
  // `url`: a URL as forq takes it (redis://, rediss://, unix://, redis-sentinel://,
  // redis-cluster://), or an ioredis client (Redis or Cluster) of your own.
  constructor(url = 'redis://127.0.0.1:6379', options = {}) {
    if (typeof url === 'string') {
      this.redis = connect(url, options);
      this.own = true;
    } else {
      this.redis = url;
      this.own = false;
    }
    this.events = new Map(); // queue -> {on, at}: read again after a second
    this.blocking = []; // idle connections for waits (a blocking read holds its connection)
    this.loaded = false; // every script loaded into Redis by this client (before a pipeline)
  }

  async close() {
    for (const c of this.blocking) c.disconnect();
    this.blocking = [];
    if (this.own) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  async script(name, keys, args, conn = this.redis) {
    const s = SCRIPTS[name];
    try {
      return await conn.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!isNoScript(e)) throw e;
      return conn.eval(s.source, keys.length, ...keys, ...args);
    }
  }

  // SCRIPT LOAD of the named scripts, into every primary of a cluster (a command without a key
  // goes to any one node).
  async loadScripts(names) {
    const targets = typeof this.redis.nodes === 'function' ? this.redis.nodes('master') : [this.redis];
    for (const node of targets) for (const name of names) await node.script('LOAD', SCRIPTS[name].source);
  }

  // One round trip of steps ({cmd} or {script, keys, args}); each reply, or its Error. Redis
  // gets the scripts before the first pipeline (and again after it is seen without them), so
  // that no call of a pipeline is refused (NOSCRIPT) and sent again after the others, out of
  // their order.
  async pipe(steps) {
    if (!this.loaded && steps.some((st) => st.script)) {
      await this.loadScripts(Object.keys(SCRIPTS));
      this.loaded = true;
    }
    const send = async (which) => {
      const p = this.redis.pipeline();
      for (const i of which) {
        const st = steps[i];
        if (st.cmd) p.call(...st.cmd);
        else p.evalsha(SCRIPTS[st.script].sha, st.keys.length, ...st.keys, ...st.args);
      }
      return (await p.exec()).map(([err, r]) => err || r);
    };
    const out = await send(steps.map((_, i) => i));
    const unloaded = out.map((r, i) => (isNoScript(r) ? i : -1)).filter((i) => i >= 0);
    if (unloaded.length) { // refused before doing anything: load the scripts, send those again
      this.loaded = false;
      await this.loadScripts(new Set(unloaded.map((i) => steps[i].script)));
      const again = await send(unloaded);
      unloaded.forEach((i, n) => { out[i] = again[n]; });
    }
    return out;
  }

  async run(step) {
    if (step.cmd) return this.redis.call(...step.cmd);
    return this.script(step.script, step.keys, step.args);
  }

  // Whether the queue's events are on (so a plain enqueue writes its `added` event), read at
  // most once a second; and, the first time, that the queue's schema is one this client speaks.
  async eventsOn(queue) {
    const seen = this.events.get(queue);
    if (seen && Date.now() - seen.at < 1000) return seen.on;
    const [schema, events] = await this.redis.hmget(key(queue, 'meta'), 'schema', 'events');
    if (schema !== null && schema !== String(SCHEMA))
      throw new SchemaMismatch(`queue ${queue} was written with protocol schema ${schema}; this client speaks ${SCHEMA}: use a client of the release its workers run`);
    const on = core.toInt(events || 0) > 0;
    this.events.set(queue, { on, at: Date.now() });
    return on;
  }

  // Adds one job: {handler, payload, id, priority, attempts, retry, delayMs | runAt, waitable}.
  // Resolves to {id, duplicate}; rejects with InvalidJob, in the words of `forq enqueue`, if the
  // job breaks a rule (nothing added).
  async enqueue(queue, job = {}) {
    const p = core.plan(queue, job);
    const on = await this.eventsOn(queue);
    return p.jobId(await this.run(p.step(on)));
  }

  // Many jobs: plain ones in enqueue_many.lua calls of up to 1,000 jobs (or about 4 MiB) per
  // priority, the others one script call each; up to 1,000 jobs a round trip. One outcome per
  // job, in order: {id, duplicate}, or {error} (an InvalidJob: nothing added for it; or what
  // Redis refused).
  async enqueueMany(queue, jobs) {
    core.checkQueue(queue);
    await this.eventsOn(queue); // (the schema check; the scripts read events themselves)
    const out = new Array(jobs.length).fill(null);
    const plans = [];
    jobs.forEach((j, at) => {
      const quick = core.quickPlan(queue, j);
      if (quick) {
        plans.push([at, quick]);
        return;
      }
      try {
        plans.push([at, core.plan(queue, j, true)]);
      } catch (e) {
        if (!(e instanceof ForqError)) throw e;
        out[at] = { error: e };
      }
    });
    // Up to 4 rounds of 1,000 jobs in flight: Redis runs one while this process makes the next
    // (one connection, so they run in order).
    const inFlight = [];
    for (let start = 0; start < plans.length; start += 1000) {
      const chunk = plans.slice(start, start + 1000);
      const steps = [];
      const owners = []; // the jobs each step enqueues
      let plain = new Map(); // priority -> plain jobs not yet in a step
      const flush = () => { // the plain jobs so far, in calls of about 4 MiB at most
        for (const [priority, group] of plain) {
          let size = 0, begun = 0;
          group.forEach(([, p], n) => {
            size += p.size;
            if (size > 4 << 20 || n === group.length - 1) {
              const part = group.slice(begun, n + 1);
              steps.push(core.bulkStep(queue, priority, part.map(([, q]) => q)));
              owners.push(part);
              begun = n + 1;
              size = 0;
            }
          });
        }
        plain = new Map();
      };
      for (const [at, p] of chunk) {
        if (p.kind === 'xadd') {
          if (!plain.has(p.priority)) plain.set(p.priority, []);
          plain.get(p.priority).push([at, p]);
        } else { // its own script call, after the plain jobs before it (so they keep order)
          flush();
          steps.push(p.step(false));
          owners.push([[at, p]]);
        }
      }
      flush();
      inFlight.push(this.pipe(steps).then((replies) => {
        owners.forEach((owned, n) => {
          const r = replies[n];
          if (r instanceof Error) {
            for (const [at] of owned) out[at] = { error: new ForqError(r.message) };
          } else if (owned.length === 1 && owned[0][1].kind !== 'xadd') {
            out[owned[0][0]] = owned[0][1].jobId(r);
          } else {
            owned.forEach(([at, p], i) => { out[at] = p.jobId(r[i]); });
          }
        });
      }));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
    return out;
  }

  async lookup(queue, id) {
    core.checkQueue(queue);
    if (typeof id !== 'string' || !id) throw new InvalidJob('id must be 1 to 256 bytes');
    const reply = await this.script('job', core.lookupKeys(queue, id), [id, GROUP]);
    const found = core.shape(queue, id, reply);
    if (found.job && found.job.state === 'index') {
      const ms = await this.script('results', [key(queue, 'results')], ['find', id]);
      if (ms === null) return { job: null, raw: found.raw };
      found.job.state = 'completed';
      found.job.attempts = 1;
      found.job.finished_ms = Number(ms);
    }
    return found;
  }

  // The job as it stands (the shape `forq job ID --json` prints), or null.
  async getJob(queue, id) {
    return (await this.lookup(queue, id)).job;
  }

  async borrow() {
    return this.blocking.pop() || this.redis.duplicate();
  }

  // The job once it has ended (completed, dead or cancelled), or as it stands when timeoutMs
  // runs out; null if the queue knows nothing of the id. The steps of forq::client::wait
  // (docs/protocol.md, "Wait"): a waitable job's end wakes it at once; another is looked at
  // again, every 100 ms growing to 1 s.
  async wait(queue, id, { timeoutMs = 30000 } = {}) {
    core.checkQueue(queue);
    const until = Date.now() + Math.max(0, timeoutMs);
    const finished = key(queue, 'finished');
    const top = await this.redis.xrevrange(finished, '+', '-', 'COUNT', 1);
    let last = top.length ? top[0][0] : '0-0';
    let job = await this.getJob(queue, id);
    let looked = Date.now();
    let again = 100;
    let conn = null;
    try {
      for (;;) {
        if (job === null || core.isTerminal(job)) return job;
        const left = until - Date.now();
        if (left <= 0) return job;
        let news = false;
        if (job.waitable) {
          const block = Math.max(1, Math.min(1000, left));
          conn = conn || (await this.borrow());
          const r = await conn.xread('COUNT', 1000, 'BLOCK', block, 'STREAMS', finished, last);
          for (const [, entries] of r || [])
            for (const [entryId, kv] of entries) {
              last = entryId;
              if (core.pairs(kv).id === id) news = true;
            }
          if (!news && Date.now() - looked < 5000) continue;
        } else {
          await sleep(Math.min(again, left));
          again = Math.min(again * 2, 1000);
        }
        job = await this.getJob(queue, id);
        looked = Date.now();
      }
    } finally {
      if (conn) {
        if (this.blocking.length < 16 && conn.status === 'ready') this.blocking.push(conn);
        else conn.disconnect();
      }
    }
  }

  // enqueue (waitable), then wait for its end.
  async enqueueAndWait(queue, job = {}, { timeoutMs = 30000 } = {}) {
    const added = await this.enqueue(queue, { ...job, waitable: true });
    const found = await this.wait(queue, added.id, { timeoutMs });
    if (found === null) throw new ForqError(`job ${added.id} vanished from queue ${queue} while waited for`);
    return found;
  }

  // Cancels a job: one not started never starts; a running one is told to stop (within about
  // 0.5 s). Resolves to {outcome: cancelled | requested | already_requested | terminal, job}, or
  // null if the queue knows nothing of the id.
  async cancel(queue, id, { by = 'client', reason = '' } = {}) {
    core.checkQueue(queue);
    if (typeof by !== 'string' || !by || Buffer.byteLength(by) > 128)
      throw new InvalidJob('who cancels: 1 to 128 bytes of UTF-8 text');
    if (typeof reason !== 'string' || Buffer.byteLength(reason) > 1000)
      throw new InvalidJob('the reason: at most 1,000 bytes of UTF-8 text');
    for (let tries = 0; tries < 20; tries++) {
      const { job, raw } = await this.lookup(queue, id);
      if (job === null) return null;
      if (core.isTerminal(job)) return { outcome: 'terminal', job };
      const delayed = job.state === 'delayed';
      let rec = '';
      if (job.state === 'ready') { // the entry's own fields, as cancelled:jobs keeps them
        const o = core.pairs(raw.fields);
        o.id = id;
        o.attempt = o.attempt ?? '0';
        o.priority = raw.priority ?? '0';
        rec = JSON.stringify(o);
      }
      const keys = ['cancel', 'cancelled', 'cancelled_jobs', 'stats', 'finished', 'delayed',
        'delayed_jobs', 'entries'].map((n) => key(queue, n));
      keys.push(delayed ? key(queue, 'stream') : streamKey(queue, Number(raw.priority)),
        key(queue, 'meta'), key(queue, 'events'));
      const args = [GROUP, id, String(Date.now()), by, reason, delayed ? 'delayed' : 'entry',
        delayed ? '' : raw.entry, rec, job.waitable ? '1' : '0'];
      const r = await this.script('cancel', keys, args);
      const what = r && r.length ? r[0] : '';
      if (what === 'moved') continue;
      const outcome = what === 'cancelled' ? 'cancelled' : r.length > 1 ? 'already_requested' : 'requested';
      return { outcome, job: (await this.getJob(queue, id)) || job };
    }
    throw new ForqError('the job kept moving while it was cancelled (20 tries); try again');
  }

  // {queue, ready, active, delayed, dead, cancelled, completed (a running total), paused}.
  async counts(queue) {
    core.checkQueue(queue);
    const steps = [];
    for (let p = 0; p <= 9; p++) steps.push({ cmd: ['xinfo', 'GROUPS', streamKey(queue, p)] });
    for (let p = 0; p <= 9; p++) steps.push({ cmd: ['xlen', streamKey(queue, p)] });
    steps.push({ cmd: ['zcard', key(queue, 'delayed')] }, { cmd: ['zcard', key(queue, 'dead')] },
      { cmd: ['zcard', key(queue, 'cancelled')] }, { cmd: ['hget', key(queue, 'stats'), 'completed'] },
      { cmd: ['hget', key(queue, 'meta'), 'paused'] });
    const r = await this.pipe(steps);
    let ready = 0, active = 0;
    for (let p = 0; p <= 9; p++) {
      const length = typeof r[10 + p] === 'number' ? r[10 + p] : 0;
      const mine = (Array.isArray(r[p]) ? r[p] : []).map(core.pairs).find((g) => g.name === GROUP);
      if (!mine) { ready += length; continue; } // no consumer started on it: all ready
      const pending = core.toInt(mine.pending ?? 0);
      active += pending;
      ready += Math.max(0, mine.lag !== undefined && mine.lag !== null ? core.toInt(mine.lag) : length - pending);
    }
    const n = (x) => (x instanceof Error || x === null ? 0 : core.toInt(x));
    return { queue, ready, active, delayed: n(r[20]), dead: n(r[21]), cancelled: n(r[22]),
      completed: n(r[23]), paused: r[24] === '1' };
  }

  async setPaused(queue, paused) {
    core.checkQueue(queue);
    const r = await this.pipe([{ cmd: ['hset', key(queue, 'meta'), 'paused', paused ? '1' : '0'] },
      { cmd: ['xadd', key(queue, 'wake'), 'MAXLEN', '~', '1000', '*', 'meta', 'changed'] }]);
    for (const x of r) if (x instanceof Error) throw new ForqError(x.message);
  }

  pause(queue) { return this.setPaused(queue, true); }
  resume(queue) { return this.setPaused(queue, false); }
}

module.exports = { Client, ForqError, InvalidJob, SchemaMismatch, SCHEMA, connect, plan: core.plan };
