-- Resume a paused sender: clear its state and recent outcomes, and release every message it held.
-- KEYS: the sender's hash (dispatch:sender:<provider>:<sender>).  ARGV: now.  Returns how many were held.
local held = redis.call('SMEMBERS', KEYS[1] .. ':held')
for _, id in ipairs(held) do
  redis.call('ZADD', 'dispatch:due', ARGV[1], id)
end
redis.call('DEL', KEYS[1] .. ':held', KEYS[1] .. ':outcomes')
redis.call('HSET', KEYS[1], 'state', 'active')
redis.call('HDEL', KEYS[1], 'paused_at', 'paused_reason', 'window_failures')
return #held
