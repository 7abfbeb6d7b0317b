-- Enqueue with a caller-given id, at most once (docs/protocol.md, "Enqueue").
-- KEYS[1] forq:{Q}:unique:<id>, KEYS[2] the stream, and optionally KEYS[3] meta and KEYS[4]
-- events (stream): then an `added` event is written when the queue's events are on
-- (docs/job-control.md, "Events"). ARGV[1] the id, ARGV[2] marker TTL in seconds, ARGV[3..]
-- field, value, ... (without `id`, which this script adds).
-- Returns {'duplicate', entry id of the first} or {'enqueued', entry id}.
local existing = redis.call('GET', KEYS[1])
if existing then return {'duplicate', existing} end
local fields = {'id', ARGV[1]}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local entry = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('SET', KEYS[1], entry, 'EX', ARGV[2])
if #KEYS >= 4 then
  local max = tonumber(redis.call('HGET', KEYS[3], 'events') or '0') or 0
  if max > 0 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', max, '*', 'event', 'added', 'id', ARGV[1])
  end
end
return {'enqueued', entry}
