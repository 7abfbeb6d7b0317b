-- Enqueue many plain jobs (no caller id, no delay) of one priority in one call, for the producer
-- clients' bulk enqueue (clients/): the XADDs a pipeline of them would make, in one command of
-- two arguments (a client spends far less making one JSON text than a command's arguments per
-- job, and Redis reads one command); and while the queue's events are on (meta's `events`),
-- each job's `added` event after its XADD, as added.lua writes it.
-- KEYS[1] the stream, KEYS[2] meta, KEYS[3] events (stream).
-- ARGV[1] the priority (0 to 9), ARGV[2] the jobs: a JSON array with, per job, the array of its
-- fields and values as strings, as a plain XADD writes them: [["handler", "h", "payload",
-- "{...}"], ...].
-- Returns the entry ids, in the jobs' order (a job id is its entry id, with `-p<N>` after it for
-- a priority N > 0).
local max = tonumber(redis.call('HGET', KEYS[2], 'events') or '0') or 0
local suffix = ''
if ARGV[1] ~= '0' then suffix = '-p' .. ARGV[1] end
local ids = {}
for i, fields in ipairs(cjson.decode(ARGV[2])) do
  local entry = redis.call('XADD', KEYS[1], '*', unpack(fields))
  if max > 0 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', max, '*', 'event', 'added', 'id', entry .. suffix)
  end
  ids[i] = entry
end
return ids
