-- One slot of a schedule becomes at most one job (docs/schedules.md). Every keeper that sees
-- the slot due may call this; the first whose expected slot and version still hold moves the
-- schedule on, the others find it moved and do nothing. The job's id is the same on every host
-- (schedule:<name>:<slot>), and its marker (as enqueue_unique's) refuses it a second time.
-- KEYS[1] forq:{Q}:schedule_due, KEYS[2] forq:{Q}:schedule_state, KEYS[3] the job's stream,
-- KEYS[4] forq:{Q}:unique:<job id>
-- ARGV[1] the name, ARGV[2] the slot the schedule is expected at (its score in KEYS[1]),
-- ARGV[3] the version expected, ARGV[4] the slot this call runs or skips, ARGV[5] the next slot
-- ("": none, the schedule ends), ARGV[6] "run" or "skip", ARGV[7] how many slots before
-- ARGV[4] it passes over (counted as skipped), ARGV[8] the job id, ARGV[9] marker TTL in
-- seconds, ARGV[10] why slots are skipped ("missed" or "overlap"), ARGV[11] the limit on runs
-- ("": none), ARGV[12] how late the run is (ms after its slot), ARGV[13..] the job's stream
-- fields (without `id`).
-- Returns 'ran', 'skipped', 'moved' (another keeper was first), 'changed' (a new version) or
-- 'ended' (the limit was reached before this slot).
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) ~= tonumber(ARGV[2]) then return 'moved' end
local n = ARGV[1]
if redis.call('HGET', KEYS[2], n .. ':version') ~= ARGV[3] then return 'changed' end
local limit = tonumber(ARGV[11])
local runs = tonumber(redis.call('HGET', KEYS[2], n .. ':runs') or '0')
if limit and runs >= limit then
  redis.call('ZREM', KEYS[1], n)
  return 'ended'
end
local function skipped(count)
  redis.call('HINCRBY', KEYS[2], n .. ':skipped', count)
  redis.call('HINCRBY', KEYS[2], n .. ':skipped:' .. ARGV[10], count)
end
local ran = false
if ARGV[6] == 'run' and redis.call('SET', KEYS[4], 'pending', 'NX', 'EX', ARGV[9]) then
  local fields = {'id', ARGV[8]}
  for i = 13, #ARGV do fields[#fields + 1] = ARGV[i] end
  local entry = redis.call('XADD', KEYS[3], '*', unpack(fields))
  redis.call('SET', KEYS[4], entry, 'EX', ARGV[9])
  ran = true
  runs = runs + 1
end
local passed = tonumber(ARGV[7])
if passed > 0 then skipped(passed) end
if ARGV[5] == '' or (limit and runs >= limit) then
  redis.call('ZREM', KEYS[1], n)
else
  redis.call('ZADD', KEYS[1], ARGV[5], n)
end
redis.call('HSET', KEYS[2], n .. ':last_slot', ARGV[4])
redis.call('HDEL', KEYS[2], n .. ':held')
if ran then
  redis.call('HSET', KEYS[2], n .. ':last_id', ARGV[8], n .. ':late_ms', ARGV[12])
  redis.call('HINCRBY', KEYS[2], n .. ':runs', 1)
  return 'ran'
end
skipped(1)
return 'skipped'
