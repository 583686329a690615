-- A message's validity: one accepted with `valid_for` or `expires_at` (or MESSAGE_VALIDITY_SECONDS) carries
-- `expires_at` (unix seconds) on its record, and waits in dispatch:expiring until then. A waiting message past
-- it is never sent: it moves to `expired`, at its claim (claim.lua, claim_group.lua) or, wherever it waits (a
-- schedule, a retry's backoff, a pacing slot, a paused sender, pool or batch), at the reconciler's sweep
-- (expire_due.lua). One being sent is left alone: the provider may already have it. Needs lifecycle and senders
-- (dispatcher/scripts.py puts them first).

-- `timestamp` (unix seconds) as ISO-8601 UTC with milliseconds, as `iso` in dispatcher/store.py writes it
-- (scripts have no date functions): to the microsecond first, then cut to the millisecond, as Python does. The
-- date of a day number is Howard Hinnant's civil_from_days.
local function iso_of(timestamp)
  local seconds = math.floor(timestamp)
  local micros = math.floor((timestamp - seconds) * 1000000 + 0.5)
  if micros == 1000000 then seconds, micros = seconds + 1, 0 end
  local millis = math.floor(micros / 1000)
  local rest = seconds % 86400
  local z = (seconds - rest) / 86400 + 719468  -- days since 0000-03-01
  local era = math.floor(z / 146097)
  local doe = z - era * 146097  -- day of the 400-year era
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))  -- day of the year from March
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day, math.floor(rest / 3600),
                       math.floor(rest % 3600 / 60), rest % 60, millis)
end

-- Expire the waiting message `id` (in `status`) when its `expires_at` (the record's field; nil or false when
-- it has none) has come; returns whether it did. It leaves the schedule and due indexes as a cancel does, and
-- the held sets of a paused sender and of a pool, so that what they count as held is still waiting. Anything
-- else that lists it (a paused batch's chunks, a member's reserved slots) lets it go by itself: their claims
-- skip a message no longer waiting.
local function expire_if_past(key, id, status, expires_at, now, now_iso)
  local deadline = tonumber(expires_at or '')
  if not deadline or deadline > now then return false end
  redis.call('ZREM', 'dispatch:scheduled', id)
  redis.call('ZREM', 'dispatch:due', id)
  redis.call('ZREM', 'dispatch:expiring', id)
  local f = redis.call('HMGET', key, 'provider', 'sender', 'pool')
  if f[1] then redis.call('SREM', 'dispatch:sender:' .. sender_id(f[1], f[2]) .. ':held', id) end
  if f[3] then redis.call('SREM', 'dispatch:pool:' .. f[3] .. ':held', id) end
  move(key, id, status, 'expired', now, now_iso,
       cjson.encode({status = 'expired', at = now_iso, reason = 'valid until ' .. iso_of(deadline)}), false)
  return true
end
