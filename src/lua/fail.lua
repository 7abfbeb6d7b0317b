-- A failed attempt: acknowledge it, then either wait for a retry or go to the dead set
-- (docs/protocol.md, active -> delayed / dead). The verdict is the consumer's (queue::decide).
-- KEYS[1] stream, KEYS[2] delayed (zset), KEYS[3] delayed:jobs (hash), KEYS[4] dead (zset),
-- KEYS[5] dead:jobs (hash), KEYS[6] stats.
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] 'retry' or 'dead',
-- ARGV[5] run at (ms, retry) or now (ms, dead), ARGV[6] the job as JSON (docs/protocol.md).
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
  return redis.call('HINCRBY', KEYS[6], 'retried', 1)
end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[6])
return redis.call('HINCRBY', KEYS[6], 'dead', 1)
