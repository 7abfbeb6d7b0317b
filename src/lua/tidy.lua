-- Housekeeping of one queue (docs/protocol.md, "Tidying"), run by a consumer after it settled
-- jobs (about once a second at most), when the oldest result is due for eviction, and now and
-- then by the queue's upkeep consumer: evict finished jobs' results beyond their age or count
-- bound, and trim from the given streams the entries every consumer is done with.
-- KEYS[1] results (list: per ack batch <finish ms> <n> <job id> x n, oldest first), KEYS[2]
-- results:data (hash: job id -> record, for jobs that returned something), KEYS[3] stats
-- (`results_kept`: job ids in the list), KEYS[4] entries (hash: job id -> its latest entry, for
-- jobs that ran from an entry of their own; an evicted job's is dropped), KEYS[5] progress
-- (hash: an evicted job's is dropped: one reported through the API after its attempt's ack),
-- KEYS[6] cancel (hash: the cancel mark of a job that completed before it heard it is dropped),
-- KEYS[7..] the queue's streams.
-- ARGV[1] group, ARGV[2] now (ms), ARGV[3] keep_ms, ARGV[4] keep_max, ARGV[5] at most this many
-- results evicted per call (a backlog is worked off over the next calls).
-- Returns {results evicted, stream entries trimmed, ms until the oldest result kept is due for
-- eviction (0: more to evict now; -1: no results kept)}.
local horizon = tonumber(ARGV[2]) - tonumber(ARGV[3])
local kept = tonumber(redis.call('HGET', KEYS[3], 'results_kept')) or 0
local excess = kept - tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local evicted = 0
-- Most jobs return nothing: with no records at all, an eviction only trims the list, and the ids
-- need not be passed to HDEL (that was most of the cost, about 1 us an id).
local has_data = redis.call('EXISTS', KEYS[2]) == 1
local has_entries = redis.call('EXISTS', KEYS[4]) == 1
local has_progress = redis.call('EXISTS', KEYS[5]) == 1
local has_marks = redis.call('EXISTS', KEYS[6]) == 1
local next_due = 0 -- the budget ran out: more now
local emptied = false -- the whole index was evicted: the counter is 0, whatever it said
-- Only the batch headers are read here (the ids, when HDEL needs them, are read apart): after a
-- batch of many ids the next header is read alone (two elements: a window would bring ids only
-- to drop them, and turning a reply into Lua strings is most of a call's cost), after small
-- batches a window at a time (a redis.call costs about as much as a few evictions: not one
-- call per small batch). The whole batches evicted go in one LTRIM at the end: the list's
-- first `drop` elements.
-- The first look reads one header (within max_results only age evicts, and usually nothing is
-- due; beyond it, the batch's size says how to read on).
local full = 2 * budget + 2
local span = 2
local last_n = nil -- the size of the last batch looked at
local window, base = {}, 0 -- window[i] is the list's element base + i - 1
local function at(i)
  if i < base or i >= base + #window then
    if last_n then span = last_n >= 8 and 2 or full end
    window = redis.call('LRANGE', KEYS[1], i, i + span - 1)
    base = i
    span = full -- a second look: there is more to read
  end
  return window[i - base + 1]
end
local drop = 0
local junk = 0 -- elements that are not forq's, dropped: they count against the budget too
while evicted + junk < budget do
  local ms_text = at(drop)
  if ms_text == nil then
    emptied = true
    next_due = -1
    break
  end
  local n_text = at(drop + 1)
  if n_text == nil then -- a lone last element: nothing to evict now
    next_due = -1
    break
  end
  local ms, n = tonumber(ms_text), tonumber(n_text)
  last_n = n
  if not ms or not n or n < 0 or n ~= math.floor(n) then
    drop = drop + 1 -- not forq's: drop the element, never stop tidying on it
    junk = junk + 1
  else
    local take = n
    if ms >= horizon then take = math.max(0, excess) end
    take = math.min(take, n, budget - evicted, 1000) -- unpack() takes about 8,000 values
    if take <= 0 and n > 0 then
      next_due = ms - horizon
      break
    end
    if take > 0 and (has_data or has_entries or has_progress or has_marks) then
      local ids = redis.call('LRANGE', KEYS[1], drop + 2, drop + 1 + take)
      if has_data then
        redis.call('HDEL', KEYS[2], unpack(ids))
        has_data = redis.call('EXISTS', KEYS[2]) == 1 -- the last record may have gone
      end
      if has_entries then
        redis.call('HDEL', KEYS[4], unpack(ids))
        has_entries = redis.call('EXISTS', KEYS[4]) == 1
      end
      if has_progress then
        redis.call('HDEL', KEYS[5], unpack(ids))
        has_progress = redis.call('EXISTS', KEYS[5]) == 1
      end
      if has_marks then
        redis.call('HDEL', KEYS[6], unpack(ids))
        has_marks = redis.call('EXISTS', KEYS[6]) == 1
      end
    end
    if take == n then
      drop = drop + 2 + n
    else -- part of a batch: drop its first `take` ids and write its header again in front
      redis.call('LTRIM', KEYS[1], drop + take, -1)
      redis.call('LSET', KEYS[1], 0, ms_text)
      redis.call('LSET', KEYS[1], 1, n - take)
      drop = 0
      window, base = {}, 0
    end
    excess = excess - take
    evicted = evicted + take
  end
end
if drop > 0 then redis.call('LTRIM', KEYS[1], drop, -1) end
-- (Written only when it changes: a write is replicated and logged.)
if emptied then
  if kept ~= 0 then redis.call('HSET', KEYS[3], 'results_kept', 0) end
elseif evicted > 0 then
  redis.call('HINCRBY', KEYS[3], 'results_kept', -evicted)
end
-- A stream entry older than the oldest one still pending was delivered (XREADGROUP '>' hands
-- entries out in order) and settled, so it can go; with nothing pending, everything up to the
-- last delivered entry. '~' removes whole nodes only: cheap, and a few entries linger.
local trimmed = 0
for i = 7, #KEYS do
  local pending = redis.call('XPENDING', KEYS[i], ARGV[1])
  local bound = pending[2]
  if not bound then
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[i])) do
      local name, last
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] end
        if g[j] == 'last-delivered-id' then last = g[j + 1] end
      end
      if name == ARGV[1] then bound = last end
    end
  end
  if bound and bound ~= '0-0' then
    trimmed = trimmed + redis.call('XTRIM', KEYS[i], 'MINID', '~', bound)
  end
end
return {evicted, trimmed, next_due}
