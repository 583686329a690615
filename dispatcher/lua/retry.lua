-- An operator retries a failed message: failed → queued, with a fresh attempt budget, and its task, in
-- one step; the id and the history stay. Refused ('already_sent') when the provider accepted it (it
-- has a provider's id, and a late report failed it): retrying would send it twice.
-- Returns 'ok', 'missing', 'already_sent', or the status that refused it.
-- KEYS: message key, queue key.  ARGV: id, now, now (ISO), deadline, task payload.
local key, id, now, now_iso = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local status = redis.call('HGET', key, 'status')
if not status then return 'missing' end
if status ~= 'failed' then return status end
local provider_id = written_before(key, 'pmid')[1]  -- either name: an operator's retry is rare
if provider_id and provider_id ~= '' then return 'already_sent' end
redis.call('HSET', key, 'attempts', 0)
redis.call('HDEL', key, 'lease_until', 'next_attempt_at', 'paced_until')
move(key, id, status, 'queued', now, now_iso, cjson.encode({status = 'queued', at = now_iso, reason = 'retry'}),
     ARGV[4])
redis.call('LPUSH', KEYS[2], ARGV[5])
return 'ok'
