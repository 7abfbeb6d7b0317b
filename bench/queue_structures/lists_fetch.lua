-- Candidate "lists": take up to ARGV[1] ids off the ready list and lease them until ARGV[2].
-- KEYS[1] ready list, KEYS[2] lease zset. The job hashes are read afterwards with HGETALL
-- (their keys are not known before the pop, and a script must declare every key it touches).
local ids = redis.call('RPOP', KEYS[1], ARGV[1])
if not ids then return {} end
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[2], ARGV[2], id) end
return ids
