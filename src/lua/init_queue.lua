-- Queue initialisation (docs/protocol.md, "Start-up"): writes the schema version on the
-- queue's first start and returns the schema stored. KEYS[1] forq:{Q}:meta; ARGV[1] the schema
-- version. (The queue registry, forq:queues, lives in another cluster slot: it is added to by
-- a separate command, never inside a script.) A queue paused before its first start stays so.
local stored = redis.call('HGET', KEYS[1], 'schema')
if not stored then
  redis.call('HSET', KEYS[1], 'schema', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'paused', '0')
  stored = ARGV[1]
end
return stored
