-- A dead delivery is re-sent: it goes back to the end of its chain, attempts reset. An account may
-- re-send only its own (ARGV[3]; '' for an operator, who may re-send any).
-- Returns the chain, or false when there is no such dead delivery (of that account).
-- KEYS: none.  ARGV: event id, now, account or ''.
local record = redis.call('HGET', 'dispatch:cb:dead', ARGV[1])
if not record then return false end
local dead = cjson.decode(record)
if ARGV[3] ~= '' and dead.account ~= ARGV[3] then return false end
forget_dead({ARGV[1]}, {record})
enqueue_event(dead.chain, dead.url, dead.event, tonumber(ARGV[2]), dead.account)
return dead.chain
