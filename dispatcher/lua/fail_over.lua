-- A sender that fell (paused by hand or by auto-pause, or disconnected) hands back the pool messages that wait
-- for its slots: up to ARGV[2] of them go to the due index now, and their claim gives them another member
-- (route_pool in lib/pools.lua; the caller calls again while some are left, so no call walks an unbounded set).
-- KEYS: the sender's reserved set (dispatch:sender:<sender id>:reserved).  ARGV: now, most to hand back.
-- Returns {handed back, still reserved}.
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZADD', 'dispatch:due', ARGV[1], id)
end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return {#ids, redis.call('ZCARD', KEYS[1])}
