-- A provider's webhook reports a status for one of our messages. Returns {outcome, message id, its
-- status before}: 'ok' (moved), 'duplicate' (this very report came before), 'same' (already in that
-- status), 'stale' (the message is past it, e.g. a late `delivered` after `read`: kept in its history,
-- marked ignored), or {'parked'}: no message has that provider id yet. A report can come before we
-- record `sent` (the provider's webhook raced our own call's answer), so it waits, for a while, to be
-- applied when `sent` is recorded (apply_early_reports in lib/reports.lua); one for a message that is not
-- ours at all expires there.
-- KEYS: parking key (dispatch:early:<provider>:<id>).
-- ARGV: provider, its message id, new status, allowed-from (comma-separated), report key (for duplicates),
-- history step (dispatcher/history.py), now, now (ISO), how long a parked report waits (seconds), field/value
-- pairs...
local provider = ARGV[1]
-- Every answer is counted for /metrics, by provider and outcome.
local function answer(outcome, id, status)
  redis.call('HINCRBY', 'dispatch:metrics:reports', provider .. '\t' .. outcome, 1)
  return {outcome, id, status}
end
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
local now = tonumber(ARGV[7])
local id, status, created = message_of_provider_id(provider, ARGV[2], now)
local key = id and 'dispatch:msg:' .. id
if not status then
  redis.call('RPUSH', KEYS[1], cjson.encode({status = ARGV[3], allowed = ARGV[4], report = ARGV[5], entry = ARGV[6],
                                             fields = fields}))
  redis.call('LTRIM', KEYS[1], 0, 19)  -- a message has a handful of reports; keep a flood bounded
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  return answer('parked')
end
-- A record whose created_at is ISO text was written before reports seen were digests (lib/reports.lua).
local older = not tonumber(created)
return answer(apply_report(key, id, ARGV[3], ARGV[4], ARGV[5], ARGV[6], now, ARGV[8], fields, status, older), id,
              status)
