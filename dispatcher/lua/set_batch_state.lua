-- Pause or resume a batch: move its state if it is in one of the allowed ones.
-- Returns 'ok' or the state that refused.  KEYS: batch key.  ARGV: new state, allowed-from (comma-separated).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if not string.find(',' .. ARGV[2] .. ',', ',' .. state .. ',', 1, true) then return state end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
return 'ok'
