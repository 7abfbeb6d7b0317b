'use strict';
// The Node client as a command, for tests/clients/clients_test.py's cross-language steps:
//   node_tool.js URL enqueue QUEUE JOBS_JSON     prints [{id, duplicate} | {error}] as JSON
//   node_tool.js URL wait QUEUE ID TIMEOUT_MS     prints the job (or null) as JSON
//   node_tool.js URL get QUEUE ID                 prints the job (or null) as JSON
//   node_tool.js URL cancel QUEUE ID BY REASON    prints {outcome, job} (or null) as JSON
const path = require('path');
const { Client } = require(path.join(__dirname, '..', '..', 'clients', 'node'));

async function main() {
  const [url, what, queue, ...rest] = process.argv.slice(2);
  const c = new Client(url, { sentinelPassword: process.env.FORQ_SENTINEL_PASSWORD });
  try {
    let out;
    if (what === 'enqueue')
      out = (await c.enqueueMany(queue, JSON.parse(rest[0]))).map((o) => (o.error ? { error: o.error.message } : o));
    else if (what === 'wait') out = await c.wait(queue, rest[0], { timeoutMs: Number(rest[1]) });
    else if (what === 'get') out = await c.getJob(queue, rest[0]);
    else if (what === 'cancel') out = await c.cancel(queue, rest[0], { by: rest[1], reason: rest[2] });
    else throw new Error(`unknown command ${what}`);
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await c.close();
  }
}

main().catch((e) => {
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exit(1);
});
