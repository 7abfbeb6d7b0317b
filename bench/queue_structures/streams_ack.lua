-- Candidate "streams": acknowledge a batch of jobs fetched with XREADGROUP.
-- KEYS[1] stream, KEYS[2] completed counter; ARGV[1] group, ARGV[2..] entry ids.
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return redis.call('INCRBY', KEYS[2], #ids)
