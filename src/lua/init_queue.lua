-- Queue initialisation (docs/protocol.md, "Start-up"), atomic: the schema version and the
-- consumer group on every stream of the queue. Run at a worker's start and again by whoever
-- finds the queue's keys gone (Redis restarted empty, flushed, failed over to an empty replica).
-- KEYS[1] forq:{Q}:meta, KEYS[2..] the queue's streams (priorities 0..9, then wake).
-- ARGV[1] the schema version this forq speaks, ARGV[2] the group, ARGV[3] the older schema it
-- upgrades in place ('' for none).
-- Returns {stored schema, 1 if the schema was absent and is now written, groups created,
-- the schema upgraded from or ''}. A different schema is returned as is, and nothing is done.
-- (The queue registry, forq:queues, lives in another cluster slot: it is added to by a separate
-- command, never inside a script.) A queue paused before its first start stays so.
local stored = redis.call('HGET', KEYS[1], 'schema')
local written, upgraded = 0, ''
if not stored then
  redis.call('HSET', KEYS[1], 'schema', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'paused', '0')
  stored, written = ARGV[1], 1
elseif stored == ARGV[3] then
  redis.call('HSET', KEYS[1], 'schema', ARGV[1])
  stored, upgraded = ARGV[1], ARGV[3]
end
if stored ~= ARGV[1] then return {stored, 0, 0, ''} end
local created = 0
for i = 2, #KEYS do
  local r = redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[2], '0', 'MKSTREAM')
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'BUSYGROUP', 1, true) then return redis.error_reply(r.err) end
  else
    created = created + 1
  end
end
return {stored, written, created, upgraded}
