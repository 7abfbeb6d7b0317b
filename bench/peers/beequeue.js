#!/usr/bin/env node
'use strict';
// bee-queue beside forq (bench/peers/README.md).
//   node bench/peers/beequeue.js --redis-port P --workload drain|steady --jobs N --rate R --duration S
// The driver enqueues with Queue#saveAll and runs one worker process (this file, --worker):
// queue.process(200, ...), removeOnSuccess, no events (bee-queue's README: disable getEvents,
// sendEvents and storeJobs where they are not needed).
const c = require('./common');

const CONCURRENCY = 200;
const QUEUE = 'bench';

async function worker(a) {
  const Queue = c.requireNode('bee-queue');
  const rec = new c.Recorder();
  const q = new Queue(QUEUE, {
    redis: { host: '127.0.0.1', port: a.redisPort },
    isWorker: true, getEvents: false, sendEvents: false, storeJobs: false,
    removeOnSuccess: true, activateDelayedJobs: false,
  });
  q.on('error', (e) => process.stderr.write(`queue error: ${e}\n`));
  q.process(CONCURRENCY, async (job) => { rec.record(job.data.seq, job.data.t); });
  const stop = async () => { await q.close(5000); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main() {
  const a = c.parseArgs(process.argv.slice(2));
  if (a.worker) return worker(a);
  const Queue = c.requireNode('bee-queue');
  const code = await c.drive(a, {
    name: 'bee-queue',
    version: c.requireNode('bee-queue/package.json').version,
    settings: `one worker process, process(${CONCURRENCY}); removeOnSuccess; getEvents, sendEvents, ` +
      'storeJobs off; enqueue: saveAll, 1,000 a call (steady: each tick\'s jobs)',
    workerArgv: [process.execPath, __filename, '--worker', '--redis-port', String(a.redisPort)],
    makeProducer: async () => {
      const q = new Queue(QUEUE, {
        redis: { host: '127.0.0.1', port: a.redisPort },
        isWorker: false, getEvents: false, sendEvents: false, storeJobs: false,
        activateDelayedJobs: false,
      });
      await q.ready();
      return {
        enqueue: async (payloads) => {
          const errors = await q.saveAll(payloads.map((d) => q.createJob(d)));
          if (errors.size) throw new Error(`saveAll: ${[...errors.values()][0]}`);
        },
        close: () => q.close(),
      };
    },
  });
  process.exit(code);
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(2); });
