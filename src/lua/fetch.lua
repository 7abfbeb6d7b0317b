-- Fetch up to ARGV[3] jobs for consumer ARGV[2] of group ARGV[1], highest priority first
-- (docs/protocol.md, ready -> active). KEYS: the queue's streams, highest priority first.
-- XREADGROUP's COUNT applies per stream, so one call over all streams could take ten times
-- too many and would not prefer the higher ones: this walks them in order with what is left.
-- Returns XREADGROUP's shape: {{stream, {entry, ...}}, ...}.
local out = {}
local left = tonumber(ARGV[3])
for _, key in ipairs(KEYS) do
  if left <= 0 then break end
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', key, '>')
  if r and r[1] and #r[1][2] > 0 then
    out[#out + 1] = {key, r[1][2]}
    left = left - #r[1][2]
  end
end
return out
