-- Delayed jobs whose time has come go back to their stream (docs/protocol.md, delayed -> ready).
-- KEYS[1] delayed (zset), KEYS[2] delayed:jobs (hash), KEYS[3..12] the streams of priorities
-- 0..9, KEYS[13] dead (zset), KEYS[14] dead:jobs (hash), KEYS[15] entries (hash: job id ->
-- <priority>:<entry id> of the entry added, so a lookup by id finds it in one read). ARGV[1] now (ms), ARGV[2] at most this
-- many. Returns {promoted, ms until the next is due or -1}. A record that is missing or not a
-- JSON object goes to the dead set with the reason: it must never stop promotion behind it.
local function unhex(h)
  return (string.gsub(h, '%x%x', function(b) return string.char(tonumber(b, 16)) end))
end
-- The usual answer (nothing due yet, or nothing delayed at all) from one look at the head.
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then return {0, -1} end
if tonumber(head[2]) > tonumber(ARGV[1]) then
  return {0, math.floor(tonumber(head[2]) - tonumber(ARGV[1]))}
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local promoted = 0
for _, id in ipairs(due) do
  local json = redis.call('HGET', KEYS[2], id)
  local ok, job = false, nil
  if json then ok, job = pcall(cjson.decode, json) end
  local usable = ok and type(job) == 'table' and next(job) ~= nil
  if usable then
    local priority = math.floor(tonumber(job['priority']) or 0)
    if priority < 0 or priority > 9 then priority = 0 end
    job['priority'] = nil
    local fields = {}
    -- Fields that were not UTF-8 come back exactly as they came (raw_hex, docs/protocol.md).
    if type(job['raw_hex']) == 'table' then
      for _, f in ipairs(job['raw_hex']) do
        if type(f) == 'table' and #f == 3 then
          job[f[1]] = nil
          fields[#fields + 1] = unhex(f[2])
          fields[#fields + 1] = unhex(f[3])
        end
      end
    end
    job['raw_hex'] = nil
    for k, v in pairs(job) do
      if type(v) ~= 'table' then
        fields[#fields + 1] = tostring(k)
        fields[#fields + 1] = tostring(v)
      end
    end
    local added = redis.call('XADD', KEYS[3 + priority], '*', unpack(fields))
    redis.call('HSET', KEYS[15], id, priority .. ':' .. added)
    promoted = promoted + 1
  else
    local reason = json and 'its delayed record is not a JSON object with fields' or
                   'its delayed record is missing'
    redis.call('ZADD', KEYS[13], ARGV[1], id)
    redis.call('HSET', KEYS[14], id, cjson.encode({id = id, reason = reason, record = json or ''}))
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #first == 2 then wait = math.max(0, tonumber(first[2]) - tonumber(ARGV[1])) end
return {promoted, wait}
