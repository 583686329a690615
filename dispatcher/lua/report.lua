-- A provider's webhook reports a status for one of our sent messages. Returns {outcome, message id,
-- its status before}: 'ok' (moved), 'duplicate' (this very report came before), 'same' (already in
-- that status), 'stale' (the message is past it, e.g. a late `delivered` after `read`: kept in its
-- history, marked ignored), or {'unknown'} (no message has that provider id).
-- KEYS: provider-id index key.  ARGV: new status, allowed-from (comma-separated), report key (for
-- duplicates), history entry (JSON), now, now (ISO), field/value pairs...
local provider = string.match(KEYS[1], '^dispatch:pmid:([^:]+):') or ''
-- Every answer is counted for /metrics, by provider and outcome.
local function answer(outcome, id, status)
  redis.call('HINCRBY', 'dispatch:metrics:reports', provider .. '\t' .. outcome, 1)
  return {outcome, id, status}
end
local id = redis.call('GET', KEYS[1])
if not id then return answer('unknown') end
local key = 'dispatch:msg:' .. id
local status = redis.call('HGET', key, 'status')
if not status then return answer('unknown') end
if redis.call('HSETNX', key, 'report:' .. ARGV[3], 1) == 0 then return answer('duplicate', id, status) end
local new = ARGV[1]
if status == new then return answer('same', id, status) end
if not string.find(',' .. ARGV[2] .. ',', ',' .. status .. ',', 1, true) then
  local entry = cjson.decode(ARGV[4])
  entry.ignored = 'message already ' .. status
  redis.call('RPUSH', key .. ':history', cjson.encode(entry))
  return answer('stale', id, status)
end
if #ARGV > 6 then redis.call('HSET', key, unpack(ARGV, 7)) end
move(key, id, status, new, tonumber(ARGV[5]), ARGV[6], ARGV[4], false)
return answer('ok', id, status)
