-- Delayed jobs whose time has come go back to their stream (docs/protocol.md, delayed -> ready).
-- KEYS[1] delayed (zset), KEYS[2] delayed:jobs (hash), KEYS[3..12] the streams of priorities
-- 0..9. ARGV[1] now (ms), ARGV[2] at most this many. Returns {promoted, ms until the next is
-- due or -1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  local json = redis.call('HGET', KEYS[2], id)
  if json then
    local job = cjson.decode(json)
    local priority = tonumber(job['priority']) or 0
    if priority < 0 or priority > 9 then priority = 0 end
    job['priority'] = nil
    local fields = {}
    for k, v in pairs(job) do
      fields[#fields + 1] = k
      fields[#fields + 1] = tostring(v)
    end
    redis.call('XADD', KEYS[3 + priority], '*', unpack(fields))
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #next == 2 then wait = math.max(0, tonumber(next[2]) - tonumber(ARGV[1])) end
return {#due, wait}
