-- A failed attempt: wait for a retry, go to the dead set, or end cancelled (docs/protocol.md,
-- active -> delayed / dead / cancelled). The verdict is the consumer's (queue::decide), except
-- that a job with a cancel mark ends cancelled whatever the verdict (docs/job-control.md).
-- KEYS[1] stream, KEYS[2] delayed (zset), KEYS[3] delayed:jobs (hash), KEYS[4] dead (zset),
-- KEYS[5] dead:jobs (hash), KEYS[6] stats, KEYS[7] entries (hash: the job's entry, if it was
-- written there, is no longer its place: dropped), KEYS[8] progress (hash: the attempt's
-- progress, cleared as it ends), KEYS[9] cancel (hash: job id -> its cancel mark, JSON),
-- KEYS[10] cancelled (zset), KEYS[11] cancelled:jobs (hash), KEYS[12] finished (stream: the
-- ends of waitable jobs), KEYS[13] meta, KEYS[14] events (stream: written when meta's `events`
-- turns them on, docs/job-control.md).
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] 'retry', 'dead' or 'cancelled',
-- ARGV[5] run at (ms, retry) or now (ms), ARGV[6] the job as JSON (docs/protocol.md),
-- ARGV[7] '1' when the job is waitable, ARGV[8] now (ms), ARGV[9] the attempt's error (a
-- cancelled job's reason, when no mark gives one), ARGV[10] the attempt that failed (1 for the
-- first), ARGV[11] why it is dead (verdict 'dead').
-- Returns 1 (retry), 2 (dead) or 3 (cancelled), or 0 when the entry was no longer pending (another consumer recovered it and
-- settled it): then nothing is written, so a late attempt cannot revive a finished job.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return 0 end
local mark = redis.call('HGET', KEYS[9], ARGV[3])
local verdict = ARGV[4]
if mark then verdict = 'cancelled' end
local by, at, why -- who cancelled it, when and why (verdict 'cancelled')
-- Write first, acknowledge last: if a write is refused (maxmemory), the job stays pending and
-- comes back through stall recovery instead of being lost.
if verdict == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
  redis.call('HINCRBY', KEYS[6], 'retried', 1)
elseif verdict == 'dead' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
  redis.call('HSET', KEYS[5], ARGV[3], ARGV[6])
  redis.call('HINCRBY', KEYS[6], 'dead', 1)
else
  -- Who cancelled it, when and why: the mark's words, or the handler's own.
  by, at, why = 'handler', ARGV[8], ARGV[9]
  if mark then
    local ok, m = pcall(cjson.decode, mark)
    if ok and type(m) == 'table' then
      by = tostring(m['by'] or 'unknown')
      at = tostring(m['at_ms'] or ARGV[8])
      why = tostring(m['reason'] or '')
    end
  end
  local job = cjson.decode(ARGV[6])
  job['reason'] = nil
  job['cancelled_by'] = by
  job['cancelled_ms'] = at
  job['cancel_reason'] = why
  redis.call('ZADD', KEYS[10], ARGV[8], ARGV[3])
  redis.call('HSET', KEYS[11], ARGV[3], cjson.encode(job))
  redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
  -- Bounded: the oldest beyond 10,000 are forgotten.
  local over = redis.call('ZCARD', KEYS[10]) - 10000
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[10], 0, over - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[10], 0, over - 1)
    redis.call('HDEL', KEYS[11], unpack(old))
  end
  redis.call('HDEL', KEYS[9], ARGV[3])
end
redis.call('HDEL', KEYS[7], ARGV[3])
redis.call('HDEL', KEYS[8], ARGV[3])
if ARGV[7] == '1' and verdict ~= 'retry' then
  redis.call('XADD', KEYS[12], 'MAXLEN', '~', 10000, '*', 'id', ARGV[3], 'state',
             verdict == 'dead' and 'dead' or 'cancelled')
end
local max = tonumber(redis.call('HGET', KEYS[13], 'events') or '0') or 0
if max > 0 then
  local outcome = verdict == 'retry' and 'retrying' or verdict
  redis.call('XADD', KEYS[14], 'MAXLEN', '~', max, '*', 'event', 'failed', 'id', ARGV[3],
             'attempt', ARGV[10], 'reason', ARGV[9], 'next', outcome)
  if verdict == 'retry' then
    redis.call('XADD', KEYS[14], 'MAXLEN', '~', max, '*', 'event', 'retrying', 'id', ARGV[3],
               'run_at_ms', ARGV[5])
  elseif verdict == 'dead' then
    redis.call('XADD', KEYS[14], 'MAXLEN', '~', max, '*', 'event', 'dead', 'id', ARGV[3],
               'reason', ARGV[11] or ARGV[9])
  else
    redis.call('XADD', KEYS[14], 'MAXLEN', '~', max, '*', 'event', 'cancelled', 'id', ARGV[3],
               'by', by, 'reason', why)
  end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return verdict == 'retry' and 1 or (verdict == 'dead' and 2 or 3)
