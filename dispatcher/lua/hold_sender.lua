-- Back-pressure: the provider said this sender goes too fast. Push the sender's next free slot to
-- `until` (never earlier than it already is), so every worker holds it back from now on.
-- KEYS: the sender's limiter (dispatch:pace:<sender id>, see sender_id).  ARGV: until, now.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local hold = math.max(current, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], hold, 'PX', math.ceil((hold - tonumber(ARGV[2])) * 1000) + 60000)
return tostring(hold)
