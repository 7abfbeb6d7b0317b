-- Candidate "streams, trimmed": acknowledge a batch without deleting entries one by one; the
-- stream is trimmed below the oldest entry still pending (XTRIM MINID), which frees whole
-- nodes at once. KEYS[1] stream, KEYS[2] completed counter; ARGV[1] group, ARGV[2..] ids.
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local floor = pending[2]
if not floor then
  -- nothing pending: everything up to the last delivered entry is done
  local info = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, g in ipairs(info) do
    if g[2] == ARGV[1] then floor = g[8] end
  end
  if floor then
    local ms, seq = string.match(floor, '(%d+)-(%d+)')
    floor = ms .. '-' .. (tonumber(seq) + 1)
  end
end
if floor then redis.call('XTRIM', KEYS[1], 'MINID', '~', floor) end
return redis.call('INCRBY', KEYS[2], #ids)
