// Compiled by types.test.js with tsc --noEmit --strict: index.d.ts describes what index.js does.
import { Client, InvalidJob, type Job, type Enqueued } from '@forq/client';

async function handler(): Promise<void> {
  const client = new Client('redis://127.0.0.1:6379');
  const added: Enqueued = await client.enqueue('emails', { handler: 'send', payload: { to: 'a' }, delayMs: 10 });
  const job: Job | null = await client.wait('emails', added.id, { timeoutMs: 5000 });
  if (job && job.state === 'completed') console.log(job.result);
  const many = await client.enqueueMany('emails', [{ payload: 1 }, { payload: 2, priority: 3 }]);
  for (const m of many) if ('error' in m) console.log(m.error instanceof InvalidJob);
  const cancelled = await client.cancel('emails', added.id, { reason: 'no longer needed' });
  console.log(cancelled?.outcome, (await client.counts('emails')).ready);
  await client.close();
}
void handler;
// @ts-expect-error: an option that does not exist
void new Client().enqueue('q', { delay: 5 });
