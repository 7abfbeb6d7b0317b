-- Acknowledge finished jobs and keep their results, bounded (docs/protocol.md, active -> done).
-- KEYS[1] stream, KEYS[2] results (zset: job id by finish time), KEYS[3] results:data (hash:
-- job id -> result JSON), KEYS[4] stats.
-- ARGV[1] group, ARGV[2] now_ms, ARGV[3] keep_ms (age limit), ARGV[4] keep_max (count limit),
-- then per job: entry id, job id, result JSON. The consumer sends at most 1,000 jobs a call
-- (Lua's unpack() takes about 8,000 values).
local entries = {}
for i = 5, #ARGV, 3 do
  entries[#entries + 1] = ARGV[i]
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
end
-- Bounded by age and by count, the oldest first, at most 1,000 evictions a call: a backlog of
-- old results is worked off over the next acks instead of failing this one.
local budget = 1000
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]),
                       'LIMIT', 0, budget)
local excess = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[4])
if excess > budget - #old then excess = budget - #old end
if excess > 0 then
  local more = redis.call('ZRANGE', KEYS[2], #old, #old + excess - 1)
  for _, id in ipairs(more) do old[#old + 1] = id end
end
if #old > 0 then
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[3], unpack(old))
end
redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
return redis.call('HINCRBY', KEYS[4], 'completed', #entries)
