-- Removes a schedule (docs/schedules.md). Its version counter stays, so the same name added
-- again never reuses a version.
-- KEYS[1] forq:{Q}:schedules, KEYS[2] forq:{Q}:schedule_state, KEYS[3] forq:{Q}:schedule_due
-- ARGV[1] the name. Returns 1 if it existed, else 0.
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local n = ARGV[1]
redis.call('HDEL', KEYS[2], n .. ':last_slot', n .. ':last_id', n .. ':runs', n .. ':skipped',
           n .. ':skipped:missed', n .. ':skipped:overlap', n .. ':paused', n .. ':held', n .. ':late_ms')
return existed
