'use strict';
// The conformance vectors (src/protocol/vectors.json, the package's copy) against this client:
// every job is refused in exactly the vector's words or becomes exactly its call. No Redis.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const core = require('../lib/core');

const VECTORS = require(path.join(__dirname, '..', 'protocol', 'vectors.json'));

function options(job) {
  const o = { ...job };
  if ('delay_ms' in o) { o.delayMs = o.delay_ms; delete o.delay_ms; }
  return o;
}

test('every vector', () => {
  assert.ok(VECTORS.enqueue.length > 30);
  for (const v of VECTORS.enqueue) {
    if (v.error !== undefined) {
      assert.throws(() => core.plan(v.queue, options(v.job)),
        (e) => e instanceof core.InvalidJob && e.message === v.error, v.name);
      continue;
    }
    const p = core.plan(v.queue, options(v.job));
    const call = v.call;
    assert.strictEqual(p.kind, call.kind, v.name);
    const step = p.step(false);
    if (call.kind === 'xadd') {
      assert.deepStrictEqual(step, { cmd: ['xadd', call.key, '*', ...call.fields] }, v.name);
      assert.deepStrictEqual(p.jobId('1-0'), { id: '1-0' + call.id_suffix, duplicate: false });
    } else if (call.kind === 'unique') {
      assert.deepStrictEqual(step, { script: call.script, keys: call.keys, args: call.args }, v.name);
    } else {
      assert.strictEqual(step.script, call.script, v.name);
      assert.deepStrictEqual(step.keys, call.keys, v.name);
      const [at, id, ttl, record] = step.args;
      assert.deepStrictEqual([id, ttl], [call.id, '604800'], v.name);
      assert.deepStrictEqual(JSON.parse(record), call.record, v.name);
      assert.ok(Math.abs(Number(at) - (Date.now() + v.job.delay_ms)) < 5000, v.name);
    }
  }
});

test('events on: the plain XADD becomes added.lua', () => {
  const p = core.plan('q', { handler: 'h', payload: { a: 1 }, priority: 4 });
  assert.deepStrictEqual(p.step(true), { script: 'added',
    keys: ['forq:{q}:stream:p4', 'forq:{q}:meta', 'forq:{q}:events'],
    args: ['4', 'handler', 'h', 'payload', '{"a":1}'] });
});

test('JavaScript values', () => {
  assert.strictEqual(core.plan('q', { handler: 'h', payload: 1, runAt: new Date(Date.now() + 5000) }).kind, 'delayed');
  assert.throws(() => core.plan('q', { handler: 'h', payload: 10n }), /^InvalidJob: payload is not JSON: /);
  assert.throws(() => core.plan('q', { handler: 'h', payload: 1, delay: 5 }), /unknown option "delay"/);
  assert.throws(() => core.plan('q', { handler: 'h', payload: 1, id: 'a\ud800' }), /id must be UTF-8 text/);
});

test('URLs', () => {
  const u = core.parseUrl('redis-sentinel://u:p%40ss@h1:1,h2/mymaster?db=2');
  assert.deepStrictEqual([u.kind, u.nodes, u.master, u.username, u.password, u.db],
    ['sentinel', [{ host: 'h1', port: 1 }, { host: 'h2', port: 26379 }], 'mymaster', 'u', 'p@ss', 2]);
  const c = core.parseUrl('rediss-cluster://a:7000,[::1]:7001');
  assert.deepStrictEqual([c.kind, c.tls, c.nodes], ['cluster', true, [{ host: 'a', port: 7000 }, { host: '::1', port: 7001 }]]);
  assert.throws(() => core.parseUrl('http://u:secret@x'), (e) => !e.message.includes('secret'));
});
