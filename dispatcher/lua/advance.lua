-- Move a message to a new status if it is in one of the allowed ones; returns 'ok', or the status
-- that refused the move (statuses only move forward).
-- KEYS: message key.  ARGV: id, new status, allowed-from (comma-separated), deadline ('' to stop
-- watching), history entry (JSON), now, now (ISO), field/value pairs...
local key, id, new = KEYS[1], ARGV[1], ARGV[2]
local status = redis.call('HGET', key, 'status')
if not status then return 'missing' end
if not string.find(',' .. ARGV[3] .. ',', ',' .. status .. ',', 1, true) then return status end
if #ARGV > 7 then redis.call('HSET', key, unpack(ARGV, 8)) end
local deadline = false
if ARGV[4] ~= '' then deadline = ARGV[4] end
move(key, id, status, new, tonumber(ARGV[6]), ARGV[7], ARGV[5], deadline)
return 'ok'
