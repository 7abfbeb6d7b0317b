-- One slot of a schedule becomes at most one job (docs/schedules.md). Every keeper that sees
-- the slot due may call this; the first whose expected slot and version still hold moves the
-- schedule on, the others find it moved and do nothing. The job's id is the same on every host
-- (schedule:<name>:<slot>), and its marker (as enqueue_unique's) refuses it a second time.
-- KEYS[1] forq:{Q}:schedule_due, KEYS[2] forq:{Q}:schedule_state, KEYS[3] the job's stream,
-- KEYS[4] forq:{Q}:unique:<job id>
-- ARGV[1] the name, ARGV[2] the slot the schedule is expected at (its score in KEYS[1]),
-- ARGV[3] the version expected, ARGV[4] the slot this call runs or skips, ARGV[5] the next slot
-- ("": none, the schedule ends), ARGV[6] "run" or "skip", ARGV[7] how many missed slots before
-- ARGV[4] it passes over (counted as skipped), ARGV[8] the job id, ARGV[9] marker TTL in
-- seconds, ARGV[10..] the job's stream fields (without `id`).
-- Returns 'ran', 'skipped', 'moved' (another keeper was first) or 'changed' (a new version).
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) ~= tonumber(ARGV[2]) then return 'moved' end
if redis.call('HGET', KEYS[2], ARGV[1] .. ':version') ~= ARGV[3] then return 'changed' end
local ran = false
if ARGV[6] == 'run' and redis.call('SET', KEYS[4], 'pending', 'NX', 'EX', ARGV[9]) then
  local fields = {'id', ARGV[8]}
  for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
  local entry = redis.call('XADD', KEYS[3], '*', unpack(fields))
  redis.call('SET', KEYS[4], entry, 'EX', ARGV[9])
  ran = true
end
local passed = tonumber(ARGV[7])
if passed > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':skipped', passed) end
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1] .. ':last_slot', ARGV[4])
if ran then
  redis.call('HSET', KEYS[2], ARGV[1] .. ':last_id', ARGV[8])
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':runs', 1)
  return 'ran'
end
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':skipped', 1)
return 'skipped'
