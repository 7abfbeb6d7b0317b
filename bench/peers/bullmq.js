#!/usr/bin/env node
'use strict';
// BullMQ beside forq (bench/peers/README.md).
//   node bench/peers/bullmq.js --redis-port P --workload drain|steady --jobs N --rate R --duration S
// The driver enqueues with Queue.addBulk and runs one worker process (this file, --worker): one
// Worker, concurrency 50, jobs removed on completion.
const c = require('./common');

const CONCURRENCY = 50;
const QUEUE = 'bench';

async function worker(a) {
  const { Worker } = c.requireNode('bullmq');
  const rec = new c.Recorder();
  const w = new Worker(QUEUE, async (job) => { rec.record(job.data.seq, job.data.t); },
    { connection: { host: '127.0.0.1', port: a.redisPort, maxRetriesPerRequest: null },
      concurrency: CONCURRENCY, removeOnComplete: { count: 0 } });
  w.on('error', (e) => process.stderr.write(`worker error: ${e}\n`));
  const stop = async () => { await w.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main() {
  const a = c.parseArgs(process.argv.slice(2));
  if (a.worker) return worker(a);
  const { Queue } = c.requireNode('bullmq');
  const version = c.requireNode('bullmq/package.json').version;
  const code = await c.drive(a, {
    name: 'bullmq',
    version,
    settings: `one Worker process, concurrency ${CONCURRENCY}; removeOnComplete; ` +
      'enqueue: Queue.addBulk, 1,000 a call (steady: each tick\'s jobs); ioredis ' +
      c.requireNode('ioredis/package.json').version,
    workerArgv: [process.execPath, __filename, '--worker', '--redis-port', String(a.redisPort)],
    makeProducer: async () => {
      const q = new Queue(QUEUE, {
        connection: { host: '127.0.0.1', port: a.redisPort },
        defaultJobOptions: { removeOnComplete: true },
      });
      await q.waitUntilReady();
      return {
        enqueue: (payloads) => q.addBulk(payloads.map((data) => ({ name: 'noop', data }))),
        close: () => q.close(),
      };
    },
  });
  process.exit(code);
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(2); });
