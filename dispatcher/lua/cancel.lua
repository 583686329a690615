-- Cancel one message that has not started sending (queued, retrying or scheduled). Returns 'ok',
-- 'missing', or the status that refused it ('sending': it is being sent now).
-- KEYS: message key.  ARGV: id, now, now (ISO).
local key, id, now, now_iso = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local status = redis.call('HGET', key, 'status')
if not status then return 'missing' end
if not WAITING[status] then return status end
redis.call('ZREM', 'dispatch:scheduled', id)
redis.call('ZREM', 'dispatch:due', id)
move(key, id, status, 'canceled', now, now_iso, step('canceled', now), false)
return 'ok'
