-- Pauses or resumes a schedule (docs/schedules.md).
-- KEYS[1] forq:{Q}:schedules, KEYS[2] forq:{Q}:schedule_state, KEYS[3] forq:{Q}:schedule_due
-- ARGV[1] the name, ARGV[2] 'pause' or 'resume', ARGV[3] resume: the first slot ("": none).
-- Paused: out of the due set, so no keeper looks at it; resumed: due at its first slot again.
-- Returns 1, or 0 if there is no such schedule.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == 'pause' then
  redis.call('HSET', KEYS[2], ARGV[1] .. ':paused', '1')
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
if redis.call('HDEL', KEYS[2], ARGV[1] .. ':paused') == 0 then return 1 end -- was not paused
redis.call('HDEL', KEYS[2], ARGV[1] .. ':held')
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
return 1
