-- Accept one message: the record, its content (lib/content.lua) and its task, all or nothing. A message
-- scheduled for later gets no task now: it waits in dispatch:scheduled until its time. A message with a
-- validity (an `expires_at` field) waits in dispatch:expiring too (see lib/validity.lua). Nothing expires
-- until the message finishes (see set_retention in lib/lifecycle.lua).
-- The account's quotas are checked in the same step, when they are on: the request against its rate (a
-- replay is a request too), then, for a new message only (a replay is answered as it was), the contact's
-- rules (lib/contacts.lua: opt-out, 24-hour window, daily cap per contact) and the account's day count.
-- Returns {1, id} (created), {0, the id the external_id names} or {-1, the quota's or the rule's code, its figure}.
-- KEYS: the external_id key of earlier messages, message key, queue key, the account's request bucket and day
--       count ('' when off).
-- ARGV: id, deadline, status, due time ('' = now), task payload,
--       now, seconds per request, bucket size, daily limit, when the day's count expires, the contact's rules
--       (JSON, dispatcher/contacts.py Contacts.rules; '' = none), the text, the content's other members (see
--       write_content), the record's field/value pairs...
if KEYS[4] ~= '' then
  local wait = over_rate(KEYS[4], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))
  if wait then return {-1, 'rate_limited', tostring(wait)} end
end
-- A replay: the id follows from the account and the external_id (dispatcher/names.py), so the record is what a
-- replay finds. A message accepted before that has an external_id key instead (KEYS[1], no longer written;
-- the last ones expire MESSAGE_RETENTION_DAYS after their message finished).
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, ARGV[1]} end
local rules = ARGV[11] ~= '' and cjson.decode(ARGV[11])
if rules then
  local refused = contact_refusals(rules.account, {rules.phone}, rules)[1]
                  or count_contact(rules.account, rules.phone, rules)
  if refused then return {-1, refused, tostring(rules.cap)} end
end
if KEYS[5] ~= '' then
  local used = over_daily_count(KEYS[5], 1, tonumber(ARGV[9]), tonumber(ARGV[10]))
  if used then
    if rules then uncount_contact(rules.account, rules.phone, rules) end
    return {-1, 'daily_quota_exceeded', tostring(used)}
  end
end
redis.call('HSET', KEYS[2], unpack(ARGV, 14))
write_content(KEYS[2], ARGV[12], ARGV[13])
redis.call('ZADD', 'dispatch:pending', ARGV[2], ARGV[1])
redis.call('HINCRBY', 'dispatch:counts', ARGV[3], 1)
local route = redis.call('HMGET', KEYS[2], 'provider', 'sender')
redis.call('HINCRBY', 'dispatch:metrics:statuses', 'accepted\t' .. (route[1] or '') .. '\t' .. (route[2] or ''), 1)
local expires_at = redis.call('HGET', KEYS[2], 'expires_at')
if expires_at then redis.call('ZADD', 'dispatch:expiring', expires_at, ARGV[1]) end
if ARGV[4] ~= '' then
  redis.call('ZADD', 'dispatch:scheduled', ARGV[4], ARGV[1])
elseif ARGV[5] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[5])
end
return {1, ARGV[1]}
