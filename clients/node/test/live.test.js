'use strict';
// The Node client against a real Redis and a real `forq serve` (tests/clients/clients_test.py
// starts both): FORQ_TEST_REDIS is the URL, FORQ_TEST_QUEUE a queue `forq serve` consumes
// (built-in handlers echo, sleep, fail), FORQ_TEST_IDLE one it does not. Skipped without
// FORQ_TEST_REDIS (the vectors need no Redis: vectors.test.js).
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const { Client, InvalidJob, SchemaMismatch } = require('..');
const core = require('../lib/core');

const URL = process.env.FORQ_TEST_REDIS;
const QUEUE = process.env.FORQ_TEST_QUEUE || 'node';
const IDLE = process.env.FORQ_TEST_IDLE || 'node-idle';
const fresh = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('live', { skip: !URL && 'FORQ_TEST_REDIS not set' }, async (t) => {
  const c = new Client(URL);
  t.after(() => c.close());

  await t.test('a plain job runs and wait returns its result', async () => {
    const job = await c.enqueueAndWait(QUEUE, { handler: 'echo', payload: { n: 1, text: 'café' } }, { timeoutMs: 20000 });
    assert.strictEqual(job.state, 'completed');
    assert.deepStrictEqual(job.result, { n: 1, text: 'café' });
    assert.strictEqual(job.attempts, 1);
  });

  await t.test('priority, delayed, unique and bulk jobs', async () => {
    const start = Date.now();
    const p = await c.enqueue(QUEUE, { handler: 'echo', payload: { p: 7 }, priority: 7, waitable: true });
    assert.match(p.id, /-p7$/);
    const d = await c.enqueue(QUEUE, { handler: 'echo', payload: { d: 1 }, delayMs: 600, waitable: true });
    assert.match(d.id, /^\d+-d\d+$/);
    const uid = fresh('order');
    const u1 = await c.enqueue(QUEUE, { handler: 'echo', payload: { u: 1 }, id: uid, waitable: true });
    const u2 = await c.enqueue(QUEUE, { handler: 'echo', payload: { u: 2 }, id: uid });
    assert.deepStrictEqual([u1, u2], [{ id: uid, duplicate: false }, { id: uid, duplicate: true }]);
    const jobs = Array.from({ length: 50 }, (_, i) => ({ handler: 'echo', payload: { i }, waitable: true }));
    const many = await c.enqueueMany(QUEUE, [...jobs, { handler: 'bad handler', payload: 1 }]);
    assert.ok(many.at(-1).error instanceof InvalidJob);
    assert.match(many.at(-1).error.message, /^handler "bad handler" is not allowed/);
    const want = [[p, { p: 7 }], [u1, { u: 1 }], ...many.slice(0, 50).map((m, i) => [m, { i }])];
    const done = await Promise.all(want.map(([e]) => c.wait(QUEUE, e.id, { timeoutMs: 20000 })));
    done.forEach((j, n) => assert.deepStrictEqual([j.state, j.result], ['completed', want[n][1]]));
    const dd = await c.wait(QUEUE, d.id, { timeoutMs: 20000 });
    assert.deepStrictEqual([dd.state, dd.result], ['completed', { d: 1 }]);
    assert.ok(Date.now() - start >= 500);
  });

  await t.test('a bulk keeps its order in the stream', async () => {
    const q = fresh('order');
    const many = await c.enqueueMany(q, [{ handler: 'echo', payload: 1 }, { handler: 'echo', payload: 2, id: fresh('u') },
      { handler: 'echo', payload: 3, priority: 2 }, { payload: 4 }, { handler: 'echo', payload: 5, id: fresh('u') }]);
    const entries = await c.redis.xrange(`forq:{${q}}:stream`, '-', '+');
    assert.deepStrictEqual(entries.map(([, f]) => core.pairs(f).payload), ['1', '2', '4', '5']);
    assert.match(many[2].id, /-p2$/);
  });

  await t.test('a job that is not waitable is waited for by looking again', async () => {
    const e = await c.enqueue(QUEUE, { handler: 'sleep', payload: { ms: 300 } });
    const t0 = Date.now();
    const job = await c.wait(QUEUE, e.id, { timeoutMs: 20000 });
    assert.strictEqual(job.state, 'completed');
    assert.ok(Date.now() - t0 < 5000);
  });

  await t.test('a dead job, and a wait that times out', async () => {
    const e = await c.enqueue(QUEUE, { handler: 'fail', payload: { times: 5 }, attempts: 1, waitable: true });
    const job = await c.wait(QUEUE, e.id, { timeoutMs: 20000 });
    assert.strictEqual(job.state, 'dead');
    assert.match(job.reason, /failed 1 time/);
    const s = await c.enqueue(QUEUE, { handler: 'sleep', payload: { ms: 3000 }, waitable: true });
    const t0 = Date.now();
    const w = await c.wait(QUEUE, s.id, { timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(['ready', 'active'].includes(w.state), w.state);
  });

  await t.test('cancel a running job, a delayed one and a ready one', async () => {
    const s = await c.enqueue(QUEUE, { handler: 'sleep', payload: { ms: 30000 }, waitable: true });
    const until = Date.now() + 10000;
    while ((await c.getJob(QUEUE, s.id)).state !== 'active') {
      assert.ok(Date.now() < until, 'never started');
      await sleep(50);
    }
    const r = await c.cancel(QUEUE, s.id, { by: 'node-test', reason: 'not needed' });
    assert.strictEqual(r.outcome, 'requested');
    const job = await c.wait(QUEUE, s.id, { timeoutMs: 10000 });
    assert.deepStrictEqual([job.state, job.cancelled_by, job.cancel_reason], ['cancelled', 'node-test', 'not needed']);
    const d = await c.enqueue(IDLE, { handler: 'echo', payload: 1, delayMs: 60000 });
    assert.strictEqual((await c.cancel(IDLE, d.id)).outcome, 'cancelled');
    const ready = await c.enqueue(IDLE, { handler: 'echo', payload: 1, priority: 3 });
    const before = await c.counts(IDLE);
    const rr = await c.cancel(IDLE, ready.id);
    assert.deepStrictEqual([rr.outcome, rr.job.state], ['cancelled', 'cancelled']);
    assert.strictEqual((await c.counts(IDLE)).ready, before.ready - 1);
    assert.strictEqual((await c.cancel(IDLE, ready.id)).outcome, 'terminal');
    assert.strictEqual(await c.cancel(IDLE, 'no-such-job'), null);
  });

  await t.test('counts, pause and resume', async () => {
    const q = fresh('counts');
    await c.enqueueMany(q, [0, 1, 2].map((i) => ({ handler: 'echo', payload: i })));
    await c.enqueue(q, { handler: 'echo', payload: 1, delayMs: 60000 });
    const n = await c.counts(q);
    assert.deepStrictEqual([n.ready, n.active, n.delayed, n.paused], [3, 0, 1, false]);
    await c.pause(q);
    assert.strictEqual((await c.counts(q)).paused, true);
    await c.resume(q);
    assert.strictEqual((await c.counts(q)).paused, false);
  });

  await t.test('unknown jobs and bad input', async () => {
    assert.strictEqual(await c.getJob(QUEUE, 'never-enqueued'), null);
    assert.strictEqual(await c.wait(QUEUE, 'never-enqueued', { timeoutMs: 100 }), null);
    await assert.rejects(c.enqueue('a b', { handler: 'echo', payload: 1 }), /^InvalidJob: queue name "a b" is not allowed/);
    await assert.rejects(c.enqueue(QUEUE, { handler: 'echo', payload: 1, priority: 12 }), /^InvalidJob: priority 12 is not allowed/);
  });

  await t.test('a schema of another release is refused', async () => {
    const q = fresh('schema');
    await c.redis.hset(`forq:{${q}}:meta`, 'schema', '99');
    await assert.rejects(c.enqueue(q, { handler: 'echo', payload: 1 }),
      (e) => e instanceof SchemaMismatch && /schema 99; this client speaks 3/.test(e.message));
    assert.strictEqual(await c.redis.xlen(`forq:{${q}}:stream`), 0);
  });

  await t.test('events on: enqueues write `added`, also after Redis lost its scripts', async () => {
    const q = fresh('events');
    await c.redis.hset(`forq:{${q}}:meta`, 'events', '1000');
    const e = await c.enqueue(q, { handler: 'echo', payload: 1 });
    const u = await c.enqueue(q, { handler: 'echo', payload: 1, id: fresh('u') });
    const events = await c.redis.xrange(`forq:{${q}}:events`, '-', '+');
    assert.deepStrictEqual(events.map(([, f]) => f), [['event', 'added', 'id', e.id], ['event', 'added', 'id', u.id]]);
    await c.redis.script('FLUSH');
    const many = await c.enqueueMany(q, [1, 2, 3].map((i) => ({ handler: 'echo', payload: i })));
    assert.ok(many.every((m) => typeof m.id === 'string'), JSON.stringify(many));
    assert.strictEqual((await c.redis.xrange(`forq:{${q}}:events`, '-', '+')).length, 5);
  });
});
