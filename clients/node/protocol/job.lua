-- Looks a job up by its id in one queue (docs/protocol.md, "Looking a job up"), the steps of
-- forq::client::get_job in one read-only script, for the producer clients (clients/node,
-- clients/python): one round trip, and no reply tree for each language to walk twice. Atomic,
-- so a job that moves meanwhile is seen in one place or the other, never in none.
-- KEYS[1] results:data, KEYS[2] dead:jobs, KEYS[3] dead, KEYS[4] delayed:jobs, KEYS[5] delayed,
-- KEYS[6] the caller-id marker (unique:<id>), KEYS[7] entries, KEYS[8] results (the index),
-- KEYS[9] progress, KEYS[10] cancelled:jobs, KEYS[11] cancel, KEYS[12..21] the streams of
-- priority 0 to 9.
-- ARGV[1] the job id, ARGV[2] the consumer group.
-- Returns a flat list of names and values, empty when the queue knows nothing of the id:
--   state       completed | dead | cancelled | delayed | active | ready | index
--               (index: only the results index names it: completed with no record; ask
--               results.lua 'find' for when)
--   record      completed: results:data's JSON; dead, cancelled, delayed: the record's JSON
--   fields      active, ready: the entry's fields, flat (a nested list)
--   score       dead: when it died; delayed: when it is due (ms)
--   priority    active, ready: the priority of the stream holding its entry
--   entry       active, ready: that entry's id (what cancel.lua needs)
--   progress    active: the attempt's latest progress (JSON text), if any
--   cancel      active: the cancel mark (JSON), if a cancel was asked for and not yet heard
local id, group = ARGV[1], ARGV[2]

local out = {}
local function put(name, value)
  out[#out + 1] = name
  out[#out + 1] = value
end

local kept = redis.call('HGET', KEYS[1], id)
if kept then
  put('state', 'completed')
  put('record', kept)
  return out
end
local rec = redis.call('HGET', KEYS[2], id)
if rec then
  put('state', 'dead')
  put('record', rec)
  local score = redis.call('ZSCORE', KEYS[3], id)
  if score then put('score', score) end
  return out
end
rec = redis.call('HGET', KEYS[10], id)
if rec then
  put('state', 'cancelled')
  put('record', rec)
  return out
end
rec = redis.call('HGET', KEYS[4], id)
if rec then
  put('state', 'delayed')
  put('record', rec)
  local score = redis.call('ZSCORE', KEYS[5], id)
  if score then put('score', score) end
  return out
end

-- Entry ids compared exactly: "<ms>-<seq>", each part a decimal of any length.
local function parts(e)
  local ms, seq = string.match(e, '^(%d+)-(%d+)$')
  return ms, seq
end
local function less(a, b) -- decimal strings without leading zeros
  if #a ~= #b then return #a < #b end
  return a < b
end
local function after(a, b) -- entry a beyond entry b
  local am, as = parts(a)
  local bm, bs = parts(b)
  if am ~= bm then return less(bm, am) end
  return less(bs, as)
end

-- The entry the job runs from now: the entries index names a later one; else its first, where
-- a caller id's marker points or named by a generated id (`<ms>-<n>`, `-p<N>` for priority N).
local entry, only
local moved = redis.call('HGET', KEYS[7], id)
if moved then
  local p, e = string.match(moved, '^(%d):(%d+%-%d+)$')
  if p then entry, only = e, tonumber(p) end
else
  local first = redis.call('GET', KEYS[6])
  if first and parts(first) then
    entry = first
  else
    local ms, seq, p = string.match(id, '^(%d+)-(%d+)-p([1-9])$')
    if ms then
      entry, only = ms .. '-' .. seq, tonumber(p)
    elseif parts(id) then
      entry, only = id, 0
    end
  end
end

local generated = string.match(id, '^%d+%-%d+$') or string.match(id, '^%d+%-%d+%-p[1-9]$')
if entry then
  for p = 0, 9 do
    if only == nil or only == p then
      local stream = KEYS[12 + p]
      local found = redis.call('XRANGE', stream, entry, entry)
      if #found == 1 then
        local fields, own = found[1][2], nil
        for i = 1, #fields, 2 do
          if fields[i] == 'id' then own = fields[i + 1] end
        end
        -- A marker or an index entry can outlive the entry it names: only this job's counts
        -- (a generated id's first entry carries no id field: it is the id).
        if (own and own == id) or (not own and generated) then
          local state
          local pending = redis.pcall('XPENDING', stream, group, entry, entry, 1)
          if type(pending) == 'table' and #pending > 0 then
            state = 'active'
          else
            local delivered = nil
            local groups = redis.pcall('XINFO', 'GROUPS', stream)
            if type(groups) == 'table' then
              for _, g in ipairs(groups) do
                local name, last = nil, nil
                for i = 1, #g, 2 do
                  if g[i] == 'name' then name = g[i + 1] end
                  if g[i] == 'last-delivered-id' then last = g[i + 1] end
                end
                if name == group then delivered = last end
              end
            end
            if delivered == nil or after(entry, delivered) then state = 'ready' end
          end
          if state then -- (else settled, awaiting trimming)
            put('state', state)
            put('fields', fields)
            put('priority', tostring(p))
            put('entry', entry)
            if state == 'active' then
              local progress = redis.call('HGET', KEYS[9], id)
              if progress then put('progress', progress) end
              local mark = redis.call('HGET', KEYS[11], id)
              if mark then put('cancel', mark) end
            end
            return out
          end
          break -- settled: its end is in the index below
        end
        -- (another job's entry of the same id in this stream: look in the next)
      end
    end
  end
end

if redis.call('LPOS', KEYS[8], id) then put('state', 'index') end
return out
