-- A queue's rate limit, shared by every consumer on this Redis (docs/protocol.md, "Rate
-- limit"): at most ARGV[1] jobs per ARGV[2] ms, a fixed window kept in KEYS[1]
-- (forq:{Q}:rate, a hash: `w` the window's id, `n` permits taken) that expires with it.
-- ARGV[3] 'take': ARGV[4] permits wanted; returns {granted, ms until the window ends, window id}.
-- ARGV[3] 'give': ARGV[4] permits taken but not used, ARGV[5] the window they came from; they
-- go back only to that window, if it is still open. Returns {0, 0, ''}.
local max, interval, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
if ARGV[3] == 'give' then
  if n > 0 and redis.call('HGET', KEYS[1], 'w') == ARGV[5] then
    local used = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    redis.call('HSET', KEYS[1], 'n', math.max(0, used - n))
  end
  return {0, 0, ''}
end
local w = redis.call('HGET', KEYS[1], 'w')
if not w or redis.call('PTTL', KEYS[1]) < 0 then -- no window open: open one
  local t = redis.call('TIME')
  w = t[1] .. '.' .. t[2]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'w', w, 'n', 0)
  redis.call('PEXPIRE', KEYS[1], interval)
end
local used = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local left = max - used
if left <= 0 then return {0, math.max(1, redis.call('PTTL', KEYS[1])), w} end
local take = math.min(left, n)
redis.call('HINCRBY', KEYS[1], 'n', take)
return {take, 0, w}
