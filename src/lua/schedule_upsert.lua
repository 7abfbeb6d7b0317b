-- Adds or replaces a schedule (docs/schedules.md), atomically.
-- KEYS[1] forq:{Q}:schedules (hash: name -> definition JSON), KEYS[2] forq:{Q}:schedule_state
-- (hash: <name>:version, :last_slot, :last_id, :runs, :skipped, :skipped:<reason>, :paused,
-- :held), KEYS[3] forq:{Q}:schedule_due (zset: name -> its next slot, ms since the epoch)
-- ARGV[1] the name, ARGV[2] the definition's JSON, ARGV[3] its first slot ("": none)
-- The same definition again changes nothing; a paused schedule stays paused (not due).
-- Returns {'added'|'changed'|'unchanged', version}.
local old = redis.call('HGET', KEYS[1], ARGV[1])
local version_field = ARGV[1] .. ':version'
local paused = redis.call('HGET', KEYS[2], ARGV[1] .. ':paused')
if old == ARGV[2] and (paused or redis.call('ZSCORE', KEYS[3], ARGV[1])) then
  return {'unchanged', tonumber(redis.call('HGET', KEYS[2], version_field) or '0')}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local version = redis.call('HINCRBY', KEYS[2], version_field, 1)
redis.call('HDEL', KEYS[2], ARGV[1] .. ':held')
if ARGV[3] == '' or paused then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
if old then return {'changed', version} end
return {'added', version}
