-- Hand fetched jobs back without running them (docs/protocol.md, "Handing back"): the queue was
-- paused while they were fetched, or the consumer stops with jobs it has not started. Each
-- still-pending entry is added again at the end of its stream (with `id`, so the job keeps its
-- id) and the original acknowledged (tidying trims it later; no XDEL, which would leave the
-- group's lag unknown to XINFO): nothing counts as a stall.
-- The new entry is written into the queue's entries index (job id -> <priority>:<entry id>),
-- so a lookup by id finds it in one read (docs/protocol.md, "Keys of a queue").
-- A job with a cancel mark is not handed back: it stays pending, and whoever recovers it when
-- its lease runs out finds the mark and ends it cancelled (it never runs again).
-- KEYS[1] the stream, KEYS[2] entries (hash), KEYS[3] cancel (hash); ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids. Only entries still
-- pending for this consumer are handed back (one another consumer recovered is its to run).
-- Returns how many were handed back. A first attempt's job id is its entry id, with `-p<N>` on
-- the stream of priority N (docs/protocol.md, "Job ids").
local priority = string.match(KEYS[1], ':stream:p(%d)$')
local suffix = priority and ('-p' .. priority) or ''
priority = priority or '0'
local n = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #pending == 1 and #entry == 1 then
    local fields, id = entry[1][2], nil
    for j = 1, #fields, 2 do
      if fields[j] == 'id' then id = fields[j + 1] end
    end
    if not id then
      id = ARGV[i] .. suffix
      fields[#fields + 1] = 'id'
      fields[#fields + 1] = id
    end
    if redis.call('HEXISTS', KEYS[3], id) == 0 then
      local added = redis.call('XADD', KEYS[1], '*', unpack(fields))
      redis.call('HSET', KEYS[2], id, priority .. ':' .. added)
      redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
      n = n + 1
    end
  end
end
return n
