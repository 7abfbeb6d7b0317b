-- Candidate "lists": acknowledge a batch. KEYS[1] lease zset, KEYS[2] completed counter,
-- KEYS[3..] the jobs' hashes; ARGV the jobs' ids.
redis.call('ZREM', KEYS[1], unpack(ARGV))
local jobs = {}
for i = 3, #KEYS do jobs[#jobs + 1] = KEYS[i] end
redis.call('DEL', unpack(jobs))
return redis.call('INCRBY', KEYS[2], #ARGV)
