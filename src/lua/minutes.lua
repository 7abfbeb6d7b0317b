-- A queue's figures by the minute (docs/protocol.md, "Figures by the minute"), added to by each
-- worker every 10 s for what its consumer did meanwhile, and read by the dashboard.
-- KEYS[1] forq:{Q}:minutes (hash: "<minute>:<figure>" -> count, minute = epoch ms / 60000).
-- ARGV[1] this minute, ARGV[2] how many minutes are kept, ARGV[3..] pairs of a figure and what
-- to add to it: d (jobs done), f (attempts failed), l<i> (attempts started whose pick-up
-- latency fell in bucket i).
-- Once a minute the fields older than the kept minutes are removed; the hash expires when
-- nothing was added for the kept minutes and 5 more. Returns the number of fields removed.
local now = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':' .. ARGV[i], ARGV[i + 1])
end
local removed = 0
local trimmed = tonumber(redis.call('HGET', KEYS[1], 'trimmed')) or 0
if trimmed < now then
  local old = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    local m = tonumber(string.match(f, '^(%d+):'))
    if m and m <= now - keep then old[#old + 1] = f end
  end
  for i = 1, #old, 1000 do
    redis.call('HDEL', KEYS[1], unpack(old, i, math.min(i + 999, #old)))
  end
  removed = #old
  redis.call('HSET', KEYS[1], 'trimmed', now)
end
redis.call('PEXPIRE', KEYS[1], (keep + 5) * 60000)
return removed
