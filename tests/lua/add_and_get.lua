-- Test script: adds ARGV[1] to the integer at KEYS[1] and returns the new value.
-- Embedded into the test binary by forq_embed_lua, as forq's own scripts will be.
return redis.call('INCRBY', KEYS[1], ARGV[1])
