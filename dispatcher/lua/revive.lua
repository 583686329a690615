-- An operator re-sends a dead delivery: it goes back to the end of its chain, attempts reset.
-- Returns the chain, or false when there is no such dead delivery.
-- KEYS: none.  ARGV: event id, now.
local record = redis.call('HGET', 'dispatch:cb:dead', ARGV[1])
if not record then return false end
redis.call('HDEL', 'dispatch:cb:dead', ARGV[1])
redis.call('ZREM', 'dispatch:cb:dead:by-time', ARGV[1])
local dead = cjson.decode(record)
enqueue_event(dead.chain, dead.url, dead.event, tonumber(ARGV[2]))
return dead.chain
