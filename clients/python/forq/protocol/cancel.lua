-- Cancels a job (docs/job-control.md, "Cancel"), where the caller's lookup found it; atomic, so
-- a consumer fetching the job at the same moment either gets it before (then it is running and
-- told) or never.
-- KEYS[1] cancel (hash: job id -> mark), KEYS[2] cancelled (zset), KEYS[3] cancelled:jobs
-- (hash), KEYS[4] stats, KEYS[5] finished (stream: the ends of waitable jobs), KEYS[6] delayed
-- (zset), KEYS[7] delayed:jobs (hash), KEYS[8] entries (hash), KEYS[9] the stream of the job's
-- entry (mode 'entry'; any stream of the queue otherwise), KEYS[10] meta, KEYS[11] events
-- (stream: a `cancelled` event when meta's `events` turns them on).
-- ARGV[1] group, ARGV[2] job id, ARGV[3] now (ms), ARGV[4] who cancels, ARGV[5] why,
-- ARGV[6] 'delayed' (waiting in `delayed`, for its time or a retry) or 'entry' (its entry in
-- KEYS[9]: ready or running), ARGV[7] the entry id, ARGV[8] the job's record (JSON, as
-- dead:jobs holds one; mode 'entry'), ARGV[9] '1' when the job is waitable (mode 'entry').
-- Returns {'cancelled'} (it will never start: removed and recorded), {'marked'} (it is running:
-- the mark tells whoever runs it), {'marked', 'already'} (it was marked before), or {'moved'}
-- (it is no longer where the caller found it: look again).
local id = ARGV[2]

local function record(job, waitable)
  job['reason'] = nil
  job['cancelled_by'] = ARGV[4]
  job['cancelled_ms'] = ARGV[3]
  job['cancel_reason'] = ARGV[5]
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  redis.call('HSET', KEYS[3], id, cjson.encode(job))
  redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
  local over = redis.call('ZCARD', KEYS[2]) - 10000
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
    redis.call('HDEL', KEYS[3], unpack(old))
  end
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[8], id)
  if waitable then
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', 10000, '*', 'id', id, 'state', 'cancelled')
  end
  local max = tonumber(redis.call('HGET', KEYS[10], 'events') or '0') or 0
  if max > 0 then
    redis.call('XADD', KEYS[11], 'MAXLEN', '~', max, '*', 'event', 'cancelled', 'id', id, 'by',
               ARGV[4], 'reason', ARGV[5])
  end
end

if ARGV[6] == 'delayed' then
  local json = redis.call('HGET', KEYS[7], id)
  if not json or not redis.call('ZSCORE', KEYS[6], id) then return {'moved'} end
  local ok, job = pcall(cjson.decode, json)
  if not ok or type(job) ~= 'table' then job = {} end
  redis.call('ZREM', KEYS[6], id)
  redis.call('HDEL', KEYS[7], id)
  record(job, job['waitable'] == '1')
  return {'cancelled'}
end

local entry = ARGV[7]
-- (No group yet: no worker ever started on the queue, so nothing is pending or delivered.)
local pending = redis.pcall('XPENDING', KEYS[9], ARGV[1], entry, entry, 1)
if type(pending) == 'table' and pending.err == nil and #pending == 1 then
  if redis.call('HEXISTS', KEYS[1], id) == 1 then return {'marked', 'already'} end
  redis.call('HSET', KEYS[1], id,
             cjson.encode({by = ARGV[4], at_ms = ARGV[3], reason = ARGV[5]}))
  return {'marked'}
end
if #redis.call('XRANGE', KEYS[9], entry, entry) == 0 then return {'moved'} end
-- Not pending and still there: ready if the group has not delivered it yet, else settled.
local function parts(e)
  local ms, seq = string.match(e, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local last = nil
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[9])
if type(groups) ~= 'table' or groups.err ~= nil then groups = {} end
for _, g in ipairs(groups) do
  local name, delivered = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
if last then
  local ems, eseq = parts(entry)
  local lms, lseq = parts(last)
  if ems < lms or (ems == lms and eseq <= lseq) then return {'moved'} end
end
redis.call('XDEL', KEYS[9], entry)
-- The deleted entry was counted as added: count it out, so the group's backlog (entries added
-- minus entries read) stays exact for the queue's figures (Redis 7; elsewhere nothing changes).
local info = redis.call('XINFO', 'STREAM', KEYS[9])
local top, added = nil, nil
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then top = info[i + 1] end
  if info[i] == 'entries-added' then added = info[i + 1] end
end
if top and added and added > 0 then
  redis.pcall('XSETID', KEYS[9], top, 'ENTRIESADDED', added - 1)
end
record(cjson.decode(ARGV[8]), ARGV[9] == '1')
return {'cancelled'}
