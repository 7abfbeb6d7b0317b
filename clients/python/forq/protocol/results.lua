-- Reads the results index (docs/protocol.md, "Results") without sending it: the list holds, per
-- ack batch, <finish ms> <n> <job id> x n, oldest first, so its elements are not all job ids and
-- only a walk from a batch header tells them apart. Read-only; Redis sends back a few ids.
-- KEYS[1] results (list).
-- ARGV[1] 'find', ARGV[2] a job id: returns the finish time (ms) of the batch that holds the id,
--   or false when no batch does. An absent id costs one LPOS (nothing read into Lua); a present
--   one a walk from the head to it, bounded by max_results.
-- ARGV[1] 'page', ARGV[2] offset, ARGV[3] limit: the completed jobs newest first from the offset,
--   flat {id, ms, id, ms, ...}. Walks back from the tail: a batch's header is the pair before its
--   ids whose count reaches exactly to the batch after it (a caller id made of digits that
--   mimics such a pair can mislead the page, never the lookup). Reads offset + limit ids and the
--   headers between them.
local window_size = 1000
local function is_count(s) return s ~= nil and string.match(s, '^[1-9]%d*$') ~= nil end
local function is_ms(s) return s ~= nil and string.match(s, '^%d+$') ~= nil end

if ARGV[1] == 'find' then
  local positions = redis.call('LPOS', KEYS[1], ARGV[2], 'COUNT', 0)
  if #positions == 0 then return false end
  local wanted = {}
  for _, p in ipairs(positions) do wanted[p] = true end
  local last = positions[#positions]
  local window, base = {}, 0
  local function at(i)
    if i < base or i >= base + #window then
      window = redis.call('LRANGE', KEYS[1], i, i + window_size - 1)
      base = i
    end
    return window[i - base + 1]
  end
  local h = 0
  while h <= last do
    local ms, n = at(h), at(h + 1)
    if not is_ms(ms) or not is_count(n) then return false end -- not forq's: give up, say absent
    n = tonumber(n)
    for p = h + 2, h + 1 + n do
      if wanted[p] then return tonumber(ms) end
    end
    h = h + 2 + n
  end
  return false
end

-- 'page'
local skip, want = tonumber(ARGV[2]), tonumber(ARGV[3])
local len = redis.call('LLEN', KEYS[1])
local out = {}
local window, base = {}, len -- window[i] is the list's element base + i - 1
local function at(i)
  if i < base or i >= base + #window then
    local from = math.max(0, i - window_size + 1)
    window = redis.call('LRANGE', KEYS[1], from, i)
    base = from
  end
  return window[i - base + 1]
end
local stop = len -- the batch after the one looked for starts here
local seen = 0
while stop > 2 and #out < 2 * want do
  -- The header: the latest h with at(h + 1) == stop - h - 2 >= 1 and at(h) a time.
  local h = stop - 3
  while h >= 0 do
    local n = at(h + 1)
    if is_count(n) and tonumber(n) == stop - h - 2 and is_ms(at(h)) then break end
    h = h - 1
  end
  if h < 0 then break end -- not forq's layout: nothing more to say
  local ms = tonumber(at(h))
  for p = stop - 1, h + 2, -1 do
    seen = seen + 1
    if seen > skip then
      out[#out + 1] = at(p)
      out[#out + 1] = ms
      if #out >= 2 * want then break end
    end
  end
  stop = h
end
return out
