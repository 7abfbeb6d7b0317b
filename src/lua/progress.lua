-- A running attempt's progress, reported from outside the worker that runs it (the HTTP API's
-- POST /v1/queues/{queue}/jobs/{id}/progress, for http handlers' apps): written only while the
-- job's entry is still pending (leased), so a report that arrives after the attempt ended
-- leaves nothing behind (docs/protocol.md, `progress`).
-- KEYS[1] progress (hash), KEYS[2] the stream the job's entry is in, KEYS[3] meta, KEYS[4]
-- events (stream: a `progress` event when meta's `events` turns them on, docs/job-control.md).
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] the progress (JSON text).
-- Returns 1 when written, 0 when the entry is no longer pending.
local pending = redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
local max = tonumber(redis.call('HGET', KEYS[3], 'events') or '0') or 0
if max > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', max, '*', 'event', 'progress', 'id', ARGV[3],
             'progress', ARGV[4])
end
return 1
