-- Resume a paused sender: clear its state and recent outcomes, and release up to ARGV[2] of the messages
-- it held (the caller calls again while some are left: no call walks an unbounded set; one held message
-- left behind by a caller that died comes back at its hourly deadline anyway).
-- KEYS: the sender's hash (dispatch:sender:<sender id>, see sender_id).  ARGV: now, most to release.
-- Returns {released, still held}.
if redis.call('HGET', KEYS[1], 'state') == 'paused' then
  redis.call('DEL', KEYS[1] .. ':outcomes')
  redis.call('HSET', KEYS[1], 'state', 'active')
  redis.call('HDEL', KEYS[1], 'paused_at', 'paused_reason', 'window_failures')
end
local held = redis.call('SPOP', KEYS[1] .. ':held', ARGV[2])
for _, id in ipairs(held) do
  redis.call('ZADD', 'dispatch:due', ARGV[1], id)
end
return {#held, redis.call('SCARD', KEYS[1] .. ':held')}
