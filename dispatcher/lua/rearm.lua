-- The reconciler re-arms what it is about to republish: each member's deadline moves to ARGV[2], but only
-- while it is still overdue (at most ARGV[1]). One whose deadline moved meanwhile (a worker's keeper
-- renewed it, a retry was recorded with its own time) keeps it, and is not republished.
-- Returns the members re-armed.  KEYS: none.  ARGV: now, new deadline, members...
local now, out = tonumber(ARGV[1]), {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', 'dispatch:pending', ARGV[i])
  if score and tonumber(score) <= now then
    redis.call('ZADD', 'dispatch:pending', ARGV[2], ARGV[i])
    out[#out + 1] = ARGV[i]
  end
end
return out
