-- Enqueue a plain job (no caller id, no delay) into a queue whose events are on
-- (docs/job-control.md, "Events"): the XADD a producer makes otherwise, and the job's `added`
-- event, in one step, so that no other event of the job can come before it.
-- KEYS[1] the stream, KEYS[2] meta, KEYS[3] events (stream).
-- ARGV[1] the priority (0 to 9), ARGV[2..] field, value, ... (as a plain XADD writes them).
-- Returns the entry id (the job id, with `-p<N>` after it for a priority N > 0).
local entry = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
local max = tonumber(redis.call('HGET', KEYS[2], 'events') or '0') or 0
if max > 0 then
  local id = entry
  if ARGV[1] ~= '0' then id = entry .. '-p' .. ARGV[1] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', max, '*', 'event', 'added', 'id', id)
end
return entry
