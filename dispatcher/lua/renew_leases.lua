-- A chunk still holds rows it claimed a while ago (provider calls in its group were slow): extend their
-- leases before its next call, so the reconciler does not hand them to another worker meanwhile. A row
-- is still the chunk's only while it is `sending` at the attempt the chunk claimed; one taken over
-- since (its lease ran out first) is not, and the chunk must not send it.
-- Returns the ids still the chunk's. KEYS: none.  ARGV: lease until, then id, attempt pairs.
local out = {}
for i = 2, #ARGV, 2 do
  local id, attempt = ARGV[i], ARGV[i + 1]
  local key = 'dispatch:msg:' .. id
  local f = redis.call('HMGET', key, 'status', 'attempts')
  if f[1] == 'sending' and f[2] == attempt then
    redis.call('HSET', key, 'lease_until', ARGV[1])
    redis.call('ZADD', 'dispatch:pending', ARGV[1], id)
    out[#out + 1] = id
  end
end
return out
