-- Not a forq script: what lua_keys_check must refuse (ctest: lua_keys_check.refuses_keys_not_from_KEYS).
-- redis.call('GET', 'forq:{x}:meta') in a comment is fine
local k = KEYS[1]
redis.call('GET', k)
redis.call('SET', 'forq:{q}:meta', 1)
local name = 'forq:' .. ARGV[1]
redis.call('HGET', name, 'x')
redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', ARGV[1], '>')
for _, s in ipairs(KEYS) do redis.call('XLEN', s) end
