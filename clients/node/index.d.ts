// Types of forq's Node client (index.js; docs/clients.md).
import type { Cluster, Redis, RedisOptions } from 'ioredis';

export declare const SCHEMA: number;

/** Anything forq's protocol could not do; the message says what. */
export declare class ForqError extends Error {}
/** The job (queue name, id, option) breaks a rule of docs/protocol.md: nothing was added. The
 * message is the one `forq enqueue` gives. */
export declare class InvalidJob extends ForqError {}
/** The queue in Redis was written with a protocol schema this client does not speak. */
export declare class SchemaMismatch extends ForqError {}

export interface NewJob {
  /** The handler that runs it (1 to 128 of A-Z a-z 0-9 _ . : -); none: the queue's default. */
  handler?: string;
  /** Any JSON value (at most 1 MiB as JSON text). */
  payload?: unknown;
  /** Your id (1 to 256 bytes of UTF-8, no control characters): the enqueue is idempotent. */
  id?: string;
  /** 0 to 9, higher runs first. */
  priority?: number;
  /** Attempts at most, 1 to 1000 (none: the queue's policy). */
  attempts?: number;
  /** The job's retry policy over its queue's, e.g. "10/fixed/30s" (docs/retries.md). */
  retry?: string;
  /** Run no earlier than this many ms from now (at most a year). */
  delayMs?: number;
  /** Run no earlier than this time (ms since the epoch, or a Date). */
  runAt?: number | Date;
  /** Announce its end, so that wait() wakes at once. */
  waitable?: boolean;
}

export interface Enqueued {
  id: string;
  /** A job with this id was enqueued before: nothing was added. */
  duplicate: boolean;
}

export type JobState = 'ready' | 'active' | 'delayed' | 'completed' | 'dead' | 'cancelled';

/** A job as it stands: the object `forq job ID --json` prints. */
export interface Job {
  queue: string;
  id: string;
  state: JobState;
  handler?: string;
  payload?: unknown;
  attempts: number;
  priority?: number;
  max_attempts?: number;
  retry?: string;
  result?: unknown;
  last_error?: string;
  reason?: string;
  errors?: Array<{ attempt: number; at_ms: number; error: string }>;
  run_at_ms?: number;
  finished_ms?: number;
  waitable?: true;
  cancel_requested?: true;
  cancelled_by?: string;
  cancel_reason?: string;
  progress?: unknown;
  /** Fields a producer added that forq does not use. */
  fields?: Record<string, string>;
}

export interface CancelResult {
  /** cancelled: it will never start; requested: it runs and its worker is told to stop;
   * already_requested: asked before; terminal: it had ended already. */
  outcome: 'cancelled' | 'requested' | 'already_requested' | 'terminal';
  job: Job;
}

export interface Counts {
  queue: string;
  ready: number;
  active: number;
  delayed: number;
  dead: number;
  cancelled: number;
  /** A running total. */
  completed: number;
  paused: boolean;
}

export interface ClientOptions {
  /** The sentinels' own password (a redis-sentinel:// URL's credentials are the primary's). */
  sentinelPassword?: string;
  /** Passed to ioredis. */
  redisOptions?: RedisOptions;
}

export declare class Client {
  /** `url`: redis://, rediss://, unix://, redis-sentinel://, redis-cluster:// (as forq takes
   * them), or an ioredis client of your own. */
  constructor(url?: string | Redis | Cluster, options?: ClientOptions);
  readonly redis: Redis | Cluster;
  enqueue(queue: string, job: NewJob): Promise<Enqueued>;
  /** Pipelined, 1,000 a round trip; one outcome per job, in order. */
  enqueueMany(queue: string, jobs: NewJob[]): Promise<Array<Enqueued | { error: ForqError }>>;
  getJob(queue: string, id: string): Promise<Job | null>;
  /** The job once ended, or as it stands when timeoutMs (default 30,000) runs out. */
  wait(queue: string, id: string, options?: { timeoutMs?: number }): Promise<Job | null>;
  enqueueAndWait(queue: string, job: NewJob, options?: { timeoutMs?: number }): Promise<Job>;
  cancel(queue: string, id: string, options?: { by?: string; reason?: string }): Promise<CancelResult | null>;
  counts(queue: string): Promise<Counts>;
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  close(): Promise<void>;
}

/** An ioredis client for a URL as forq takes it. */
export declare function connect(url: string, options?: ClientOptions): Redis | Cluster;
