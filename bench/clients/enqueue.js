'use strict';
// One round of the Node side of bench/clients/run.sh: enqueue N jobs with forq's Node client
// (enqueueMany) or BullMQ (Queue.addBulk, 1,000 a call), and S single enqueues one after the
// other; prints one JSON line {"who", "bulk_jobs_per_s", "redis_us_per_job" (Redis's CPU in the
// bulk), "single_us"}.
//   node enqueue.js forq|bullmq REDIS_PORT N S
const path = require('path');
const Redis = require(path.join(__dirname, '..', '..', 'clients', 'node', 'node_modules', 'ioredis'));

// Redis's CPU time so far (user + system), in µs.
async function redisCpu(r) {
  const info = await r.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)[1]);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1e6;
}

const [who, port, n, s] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const jobs = Array.from({ length: n }, (_, i) => ({ i }));

async function main() {
  let bulk, single, close;
  if (who === 'forq') {
    const { Client } = require(path.join(__dirname, '..', '..', 'clients', 'node'));
    const c = new Client(`redis://127.0.0.1:${port}`);
    await c.redis.ping();
    bulk = () => c.enqueueMany('bench-node', jobs.map((payload) => ({ handler: 'noop', payload })));
    single = (i) => c.enqueue('bench-node-1', { handler: 'noop', payload: { i } });
    close = () => c.close();
  } else {
    const { Queue } = require(path.join(__dirname, '..', 'peers', 'node', 'node_modules', 'bullmq'));
    const q = new Queue('bench', { connection: { host: '127.0.0.1', port } });
    const q1 = new Queue('bench1', { connection: { host: '127.0.0.1', port } });
    await q.waitUntilReady();
    await q1.waitUntilReady();
    bulk = async () => {
      for (let at = 0; at < n; at += 1000)
        await q.addBulk(jobs.slice(at, at + 1000).map((data) => ({ name: 'noop', data })));
    };
    single = (i) => q1.add('noop', { i });
    close = async () => { await q.close(); await q1.close(); };
  }
  await single(-1); // connected, scripts loaded
  const probe = new Redis({ port });
  const cpu0 = await redisCpu(probe);
  let t = process.hrtime.bigint();
  await bulk();
  const bulkS = Number(process.hrtime.bigint() - t) / 1e9;
  const redisUs = ((await redisCpu(probe)) - cpu0) / n;
  probe.disconnect();
  t = process.hrtime.bigint();
  for (let i = 0; i < s; i++) await single(i);
  const singleUs = Number(process.hrtime.bigint() - t) / 1e3 / s;
  await close();
  console.log(JSON.stringify({ who: `node-${who}`, bulk_jobs_per_s: n / bulkS, redis_us_per_job: redisUs, single_us: singleUs }));
}

main().catch((e) => { console.error(e); process.exit(1); });
