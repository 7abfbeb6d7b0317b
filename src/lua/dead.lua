-- Operators' work on the dead set (docs/protocol.md, dead -> ready / gone).
-- KEYS[1] dead (zset), KEYS[2] dead:jobs (hash), KEYS[3..12] the streams of priorities 0..9,
-- KEYS[13] entries (hash: job id -> <priority>:<entry id>; a retried job's entry is written
-- there, a purged job's removed).
-- ARGV[1] 'retry' or 'purge', ARGV[2] 'ids' then job ids; or ARGV[2] 'before', ARGV[3] a time
-- (ms), ARGV[4] an offset: the oldest 1,000 jobs that died before that time, from the offset
-- (the caller repeats, skipping those that stayed; jobs that die meanwhile are not taken).
-- retry: each job goes back to its priority's stream as a fresh job (attempt 0, same id); a
-- record that cannot be read stays dead. Returns {handled, looked at}.
local function unhex(h)
  return (string.gsub(h, '%x%x', function(b) return string.char(tonumber(b, 16)) end))
end
local ids = {}
if ARGV[2] == 'before' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3], 'LIMIT', tonumber(ARGV[4]), 1000)
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local handled = 0
for _, id in ipairs(ids) do
  if ARGV[1] == 'purge' then
    handled = handled + redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[13], id)
  else
    local json = redis.call('HGET', KEYS[2], id)
    local ok, job = false, nil
    if json then ok, job = pcall(cjson.decode, json) end
    -- (A job without a handler runs its queue's default one.)
    if ok and type(job) == 'table' and type(job['handler'] or '') == 'string' then
      local priority = math.floor(tonumber(job['priority']) or 0)
      if priority < 0 or priority > 9 then priority = 0 end
      job['priority'] = nil
      job['reason'] = nil
      job['attempt'] = '0'
      job['id'] = id
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
      redis.call('HSET', KEYS[13], id, priority .. ':' .. added)
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      handled = handled + 1
    end
  end
end
return {handled, #ids}
