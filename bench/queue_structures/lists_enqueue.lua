-- Candidate "lists": store a job as a hash and push its id on the ready list, refusing a
-- duplicate id. KEYS[1] job hash, KEYS[2] ready list; ARGV[1] id, ARGV[2] handler, ARGV[3] payload.
if redis.call('HSETNX', KEYS[1], 'handler', ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'payload', ARGV[3], 'attempts', 0)
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
