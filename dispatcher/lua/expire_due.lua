-- The reconciler's sweep of validities: take up to ARGV[3] messages whose expires_at has come off
-- dispatch:expiring, and expire those still waiting, wherever they wait (see lib/validity.lua). A member that
-- finished otherwise meanwhile (sent, failed, canceled) or whose record is gone is just dropped.
-- The caller calls again while a slice comes back full: no call walks an unbounded set.
-- KEYS: none.  ARGV: now, now (ISO), most to take.  Returns {expired, taken}.
local now, now_iso = tonumber(ARGV[1]), ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', 'dispatch:expiring', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
if #ids > 0 then redis.call('ZREM', 'dispatch:expiring', unpack(ids)) end
local expired = 0
for _, id in ipairs(ids) do
  local key = 'dispatch:msg:' .. id
  local f = redis.call('HMGET', key, 'status', 'expires_at')
  if WAITING[f[1]] and batch_state(key) == 'accepting' then
    -- Its batch's rows are still being written: a row finished now could finish the batch before it runs (its
    -- total still counting), and it would never complete. Looked at again in a second; its chunk's claim
    -- expires it first if the batch starts meanwhile.
    redis.call('ZADD', 'dispatch:expiring', now + 1, id)
  elseif WAITING[f[1]] and expire_if_past(key, id, f[1], f[2], now, now_iso) then
    expired = expired + 1
  end
end
return {expired, #ids}
