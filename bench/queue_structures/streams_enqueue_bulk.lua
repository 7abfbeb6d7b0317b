-- Candidate "streams, bulk enqueue": add many jobs in one call. KEYS[1] stream;
-- ARGV: id, handler, payload, id, handler, payload, ...
local ids = {}
for i = 1, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'handler', ARGV[i + 1],
                             'payload', ARGV[i + 2])
end
return ids
