-- A provider's webhook reports a status for one of our messages. Returns {outcome, message id, its
-- status before}: 'ok' (moved), 'duplicate' (this very report came before), 'same' (already in that
-- status), 'stale' (the message is past it, e.g. a late `delivered` after `read`: kept in its history,
-- marked ignored), or {'parked'}: no message has that provider id yet. A report can come before we
-- record `sent` (the provider's webhook raced our own call's answer), so it waits, for a while, to be
-- applied when `sent` is recorded (apply_early_reports in lib/reports.lua); one for a message that is not
-- ours at all expires there.
-- KEYS: provider-id index key, parking key (dispatch:early:<provider>:<id>).
-- ARGV: new status, allowed-from (comma-separated), report key (for duplicates), history entry (JSON),
-- now, now (ISO), how long a parked report waits (seconds), field/value pairs...
local provider = string.match(KEYS[1], '^dispatch:pmid:([^:]+):') or ''
-- Every answer is counted for /metrics, by provider and outcome.
local function answer(outcome, id, status)
  redis.call('HINCRBY', 'dispatch:metrics:reports', provider .. '\t' .. outcome, 1)
  return {outcome, id, status}
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('GET', KEYS[1])
local key = id and 'dispatch:msg:' .. id
local status = key and redis.call('HGET', key, 'status')
if not status then
  redis.call('RPUSH', KEYS[2], cjson.encode({status = ARGV[1], allowed = ARGV[2], report = ARGV[3], entry = ARGV[4],
                                             fields = fields}))
  redis.call('LTRIM', KEYS[2], 0, 19)  -- a message has a handful of reports; keep a flood bounded
  redis.call('EXPIRE', KEYS[2], ARGV[7])
  return answer('parked')
end
return answer(apply_report(key, id, ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], fields, status),
              id, status)
