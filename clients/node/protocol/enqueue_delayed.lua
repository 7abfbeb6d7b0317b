-- Enqueue a job to run later (docs/protocol.md, "Enqueue", delayed).
-- KEYS[1] delayed (zset), KEYS[2] delayed:jobs (hash), KEYS[3] stats, KEYS[4] wake (stream:
-- the doorbell that tells an idle consumer when to promote), KEYS[5] the unique marker
-- forq:{Q}:unique:<caller-id> (only with a caller-given id); then, optionally, meta and events
-- (stream): an `added` event is written when the queue's events are on (docs/job-control.md).
-- ARGV[1] run at (ms since the epoch), ARGV[2] caller-given id or '', ARGV[3] marker TTL (s),
-- ARGV[4] the job's fields as a JSON object of strings (handler, payload, ...; no id).
-- Returns {'enqueued', id} or {'duplicate', id}. A generated id is <run at>-d<n>: unique in
-- the queue, and never equal to a stream entry id.
local id = ARGV[2]
if id ~= '' then
  if redis.call('EXISTS', KEYS[5]) == 1 then return {'duplicate', id} end
else
  id = ARGV[1] .. '-d' .. redis.call('HINCRBY', KEYS[3], 'delayed_seq', 1)
end
local job = cjson.decode(ARGV[4])
job['id'] = id
job['attempt'] = '0'
redis.call('ZADD', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], id, cjson.encode(job))
if ARGV[2] ~= '' then redis.call('SET', KEYS[5], id, 'EX', ARGV[3]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'at', ARGV[1])
local m = ARGV[2] ~= '' and 6 or 5 -- meta's place: after the marker, when there is one
if #KEYS >= m + 1 then
  local max = tonumber(redis.call('HGET', KEYS[m], 'events') or '0') or 0
  if max > 0 then
    redis.call('XADD', KEYS[m + 1], 'MAXLEN', '~', max, '*', 'event', 'added', 'id', id,
               'run_at_ms', ARGV[1])
  end
end
return {'enqueued', id}
