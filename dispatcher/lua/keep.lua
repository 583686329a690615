-- A live worker keeps what it holds (tasks/leases.py calls this every third of a lease):
--   claims: messages it is sending, as (id, attempt). A claim is still its own while the message is
--           `sending` at that attempt; the lease and the reconciler's deadline move to `until`. It is lost
--           once the message was claimed again (a higher attempt).
--   locks:  batch chunks it runs, as (chunk member, lock token): the lock lives on and the chunk's
--           deadline moves to `until`, while the token is still the lock's.
--   held:   members (message ids, chunk members) whose tasks it has received but not finished: their
--           deadline moves to `until`, so if this worker dies they come back within a lease, not after
--           QUEUED_REPUBLISH_AFTER.
-- Returns what is no longer its own: {lost claim ids...}, {lost chunk members...}.
-- KEYS: none.  ARGV: until, lease (ms), number of claims, id, attempt..., number of locks, member, token...,
--       held members...
local keep_until, lease_ms = ARGV[1], ARGV[2]
local lost_claims, lost_locks = {}, {}
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local id, attempt = ARGV[i], ARGV[i + 1]
  local key = 'dispatch:msg:' .. id
  local f = redis.call('HMGET', key, 'status', 'attempts')
  if f[1] == 'sending' and f[2] == attempt then
    redis.call('HSET', key, 'lease_until', keep_until)
    redis.call('ZADD', 'dispatch:pending', keep_until, id)
  elseif f[2] ~= attempt then
    lost_claims[#lost_claims + 1] = id  -- claimed again since (an outcome of this attempt is over: no news)
  end
  i = i + 2
end
local locks = tonumber(ARGV[i])
i = i + 1
for _ = 1, locks do
  local member, token = ARGV[i], ARGV[i + 1]
  local lock = 'dispatch:lock:' .. member
  if redis.call('GET', lock) == token then
    redis.call('PEXPIRE', lock, lease_ms)
    redis.call('ZADD', 'dispatch:pending', 'XX', keep_until, member)
  else
    lost_locks[#lost_locks + 1] = member
  end
  i = i + 2
end
for j = i, #ARGV do redis.call('ZADD', 'dispatch:pending', 'XX', keep_until, ARGV[j]) end
return {lost_claims, lost_locks}
