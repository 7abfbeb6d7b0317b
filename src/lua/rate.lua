-- A queue's rate limit, shared by every consumer on this Redis (docs/protocol.md, "Rate
-- limit"): at most ARGV[1] jobs per ARGV[2] ms, a fixed window counted in KEYS[1]
-- (forq:{Q}:rate) that expires with its window.
-- ARGV[3] 'take': ARGV[4] permits wanted; returns {granted, ms until the window ends}.
-- ARGV[3] 'give': ARGV[4] permits taken but not used (a fetch found fewer jobs); returned to
-- the window they came from, if it is still open. Returns {0, 0}.
local max, interval, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
if ARGV[3] == 'give' then
  if redis.call('PTTL', KEYS[1]) > 0 and n > 0 then redis.call('DECRBY', KEYS[1], n) end
  return {0, 0}
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = max - used
if left <= 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then -- no window (cannot happen through this script): open one
    redis.call('SET', KEYS[1], 0, 'PX', interval)
    ttl = interval
  end
  return {0, ttl}
end
local take = math.min(left, n)
if redis.call('INCRBY', KEYS[1], take) == take then redis.call('PEXPIRE', KEYS[1], interval) end
return {take, 0}
