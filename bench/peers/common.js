'use strict';
// Shared by bullmq.js and beequeue.js: argument parsing, the job payload, the recorder that the
// worker process's handler calls, and the driver that runs a workload around one worker process
// and prints one JSON line. peer_common.py and sidekiq_peer.rb do the same in Python and Ruby;
// README.md describes what is measured.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

// Packages come from bench/peers/node/node_modules (install.sh).
const requireNode = require('module').createRequire(path.join(__dirname, 'node', 'package.json'));

function parseArgs(argv) {
  const a = { redisPort: 6379, workload: 'drain', jobs: 100000, rate: 1000, duration: 10,
              payloadBytes: 100, worker: false };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--redis-port') a.redisPort = Number(v());
    else if (k === '--workload') a.workload = v();
    else if (k === '--jobs') a.jobs = Number(v());
    else if (k === '--rate') a.rate = Number(v());
    else if (k === '--duration') a.duration = Number(v());
    else if (k === '--payload-bytes') a.payloadBytes = Number(v());
    else if (k === '--worker') a.worker = true;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!['drain', 'steady'].includes(a.workload)) throw new Error('--workload is drain or steady');
  if (a.workload === 'steady') a.jobs = Math.round(a.rate * a.duration);
  if (!(a.jobs >= 1)) throw new Error('no jobs to run');
  return a;
}

// CLOCK_MONOTONIC in µs: the same clock in every process on the machine (Python's
// time.monotonic_ns and Ruby's CLOCK_MONOTONIC read it too), immune to wall-clock steps.
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

// {"seq":N,"t":µs,"pad":"xx..."}: padded so that its JSON is `bytes` long.
function payload(seq, t, bytes) {
  const p = { seq, t, pad: '' };
  p.pad = 'x'.repeat(Math.max(0, bytes - JSON.stringify(p).length));
  return p;
}

// The worker process's side: the handler calls record(seq, t) once per run. Everything stays in
// this process's memory; the report (a file, written once, when every job has run) is how the
// driver learns the end. A progress file every 1,000 jobs lets the driver tell a stall.
class Recorder {
  constructor() {
    this.n = Number(process.env.BENCH_JOBS);
    this.reportPath = process.env.BENCH_REPORT;
    this.progressPath = this.reportPath + '.progress';
    this.steady = process.env.BENCH_WORKLOAD === 'steady';
    this.seen = new Uint8Array(this.n);
    this.lat = this.steady ? new Float64Array(this.n) : null;
    this.runs = 0; this.distinct = 0; this.dups = 0; this.bad = 0;
    this.firstUs = 0; this.firstCpuUs = 0; this.reported = false;
  }
  record(seq, t) {
    const now = monoUs();
    if (this.runs++ === 0) {
      this.firstUs = now;
      const c = process.cpuUsage();
      this.firstCpuUs = c.user + c.system;
    }
    if (!(seq >= 0 && seq < this.n)) { ++this.bad; return; }
    if (this.seen[seq]++) { ++this.dups; return; }
    if (this.lat) this.lat[seq] = now - t;
    if (++this.distinct % 1000 === 0) fs.writeFileSync(this.progressPath, String(this.distinct));
    if (this.distinct === this.n && !this.reported) {
      this.reported = true;
      const r = { runs: this.runs, distinct: this.distinct, dups: this.dups, bad: this.bad,
                  first_us: this.firstUs, done_us: now, first_cpu_us: this.firstCpuUs,
                  lat_us: this.lat ? Array.from(this.lat) : [] };
      fs.writeFileSync(this.reportPath + '.tmp', JSON.stringify(r));
      fs.renameSync(this.reportPath + '.tmp', this.reportPath);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// utime + stime of a process and its descendants (µs), from /proc/<pid>/stat.
function procTreeCpuUs(pid) {
  let total = 0;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12])) * 1e6 / CLK_TCK;
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/) : []) total += procTreeCpuUs(Number(k));
    }
  } catch (e) { /* gone */ }
  return total;
}

async function redisCpuUs(redis) {
  const info = await redis.info('cpu');
  const get = (k) => Number((info.match(new RegExp(`^${k}:([0-9.]+)`, 'm')) || [])[1]);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1e6;
}

// Ready = some client of this Redis is blocked (the worker waiting for a job).
async function waitBlocked(redis, child, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('the worker exited');
    const list = await redis.client('LIST');
    if (/ flags=[A-Za-z]*b/.test(list)) return;
    await sleep(20);
  }
  throw new Error(`the worker was not waiting for jobs within ${ms / 1000} s`);
}

async function waitReport(report, child, n) {
  let last = '', lastChange = Date.now();
  for (;;) {
    if (fs.existsSync(report)) return JSON.parse(fs.readFileSync(report, 'utf8'));
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the worker exited (${child.exitCode ?? child.signalCode})`);
    await sleep(5);
    let p = '';
    try { p = fs.readFileSync(report + '.progress', 'utf8'); } catch (e) { /* none yet */ }
    if (p !== last) { last = p; lastChange = Date.now(); }
    else if (Date.now() - lastChange > 60000)
      throw new Error(`stalled at ${last || 0} of ${n} jobs (no progress for 60 s)`);
  }
}

function pct(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function stopWorker(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15000);
  await done;
  clearTimeout(t);
}

// Runs the workload. peer: { name, version, settings, workerArgv: [cmd, ...args],
// makeProducer: async () => ({ enqueue: async (payloads) => {}, close: async () => {} }) }.
async function drive(a, peer) {
  const Redis = requireNode('ioredis');
  const redis = new Redis({ host: '127.0.0.1', port: a.redisPort, lazyConnect: false });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `forq-peer-${peer.name}-`));
  const report = path.join(tmp, 'report.json');
  const log = path.join(tmp, 'worker.log');
  const env = { ...process.env, BENCH_JOBS: String(a.jobs), BENCH_REPORT: report,
                BENCH_WORKLOAD: a.workload, BENCH_REDIS_PORT: String(a.redisPort) };
  let child = null;
  const start = () => {
    const fd = fs.openSync(log, 'a');
    child = spawn(peer.workerArgv[0], peer.workerArgv.slice(1),
                  { env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    return child;
  };
  const out = { peer: peer.name, version: peer.version, settings: peer.settings,
                workload: a.workload, jobs: a.jobs };
  try {
    await redis.flushall();
    const redisVersion = ((await redis.info('server')).match(/^redis_version:(\S+)/m) || [])[1];
    const producer = await peer.makeProducer();
    let r, t0, redis0, cpu0 = 0;
    if (a.workload === 'drain') {
      redis0 = await redisCpuUs(redis);
      for (let i = 0; i < a.jobs; i += 1000) {
        const batch = [];
        for (let s = i; s < Math.min(a.jobs, i + 1000); ++s) batch.push(payload(s, 0, a.payloadBytes));
        await producer.enqueue(batch);
      }
      t0 = monoUs();
      start();
      r = await waitReport(report, child, a.jobs);
    } else {
      start();
      await waitBlocked(redis, child, 30000);
      await sleep(300); // let start-up settle
      redis0 = await redisCpuUs(redis);
      cpu0 = procTreeCpuUs(child.pid);
      t0 = monoUs();
      let sent = 0, next = t0;
      while (sent < a.jobs) {
        const due = Math.min(a.jobs, Math.floor((monoUs() - t0) * a.rate / 1e6) + 1);
        const batch = [];
        for (; sent < due; ++sent) batch.push(payload(sent, monoUs(), a.payloadBytes));
        if (batch.length) await producer.enqueue(batch);
        next += 1000;
        const wait = next - monoUs();
        if (wait > 0) await sleep(wait / 1000); else next = monoUs();
      }
      r = await waitReport(report, child, a.jobs);
    }
    const cpu1 = procTreeCpuUs(child.pid);
    const redis1 = await redisCpuUs(redis);
    await producer.close();
    const seconds = (r.done_us - t0) / 1e6;
    const lat = Float64Array.from(r.lat_us).sort();
    Object.assign(out, {
      jobs_per_s: a.jobs / seconds,
      worker_cpu_us_per_job: (cpu1 - cpu0) / a.jobs,
      redis_cpu_us_per_job: (redis1 - redis0) / a.jobs,
      pickup_p50_us: a.workload === 'steady' ? pct(lat, 0.5) : null,
      pickup_p99_us: a.workload === 'steady' ? pct(lat, 0.99) : null,
      completed: r.distinct,
      verified: r.distinct === a.jobs && r.dups === 0 && r.bad === 0 && r.runs === a.jobs,
      duplicates: r.dups,
      seconds,
      startup_s: a.workload === 'drain' ? (r.first_us - t0) / 1e6 : null,
      startup_cpu_us: a.workload === 'drain' ? r.first_cpu_us : null,
      redis_version: redisVersion,
    });
    await stopWorker(child);
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch (e) {
    if (child) await stopWorker(child);
    let tail = '';
    try { tail = fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n'); } catch (x) { /* */ }
    process.stderr.write(`${peer.name}: ${e.stack || e}\nworker log (${log}):\n${tail}\n`);
    Object.assign(out, { error: String(e.message || e), verified: false });
  }
  redis.disconnect();
  process.stdout.write(JSON.stringify(out) + '\n');
  return out.error ? 1 : 0;
}

module.exports = { requireNode, parseArgs, monoUs, payload, Recorder, drive, sleep };
