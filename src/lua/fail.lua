-- A failed attempt: either wait for a retry or go to the dead set (docs/protocol.md,
-- active -> delayed / dead). The verdict is the consumer's (queue::decide).
-- KEYS[1] stream, KEYS[2] delayed (zset), KEYS[3] delayed:jobs (hash), KEYS[4] dead (zset),
-- KEYS[5] dead:jobs (hash), KEYS[6] stats, KEYS[7] entries (hash: the job's entry, if it was
-- written there, is no longer its place: dropped), KEYS[8] progress (hash: the attempt's
-- progress, cleared as it ends).
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] 'retry' or 'dead',
-- ARGV[5] run at (ms, retry) or now (ms, dead), ARGV[6] the job as JSON (docs/protocol.md).
-- Returns 1, or 0 when the entry was no longer pending (another consumer recovered it and
-- settled it): then nothing is written, so a late attempt cannot revive a finished job.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return 0 end
-- Write first, acknowledge last: if a write is refused (maxmemory), the job stays pending and
-- comes back through stall recovery instead of being lost.
if ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
  redis.call('HINCRBY', KEYS[6], 'retried', 1)
else
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
  redis.call('HSET', KEYS[5], ARGV[3], ARGV[6])
  redis.call('HINCRBY', KEYS[6], 'dead', 1)
end
redis.call('HDEL', KEYS[7], ARGV[3])
redis.call('HDEL', KEYS[8], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
