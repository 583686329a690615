-- An account's quotas, checked inside the scripts that accept work (create, admit_request, admit_messages).
-- Like every library here, prepended by dispatcher/scripts.py to the scripts that name it there.

-- An account's quotas (dispatcher/quotas.py). The request rate is a GCRA bucket, one key holding when
-- the next request is due; over it, the seconds to wait. The day's count takes `n` new messages, all or
-- none; over it, the count already used. Within them, nil (and the request or messages are counted).
local function over_rate(key, now, interval, burst)
  local tolerance = interval * burst
  local next_at = math.max(tonumber(redis.call('GET', key) or '0'), now) + interval
  if next_at - now > tolerance then return next_at - now - tolerance end
  redis.call('SET', key, tostring(next_at), 'PX', math.ceil(tolerance * 1000) + 1000)
  return nil
end

local function over_daily_count(key, n, limit, expire_at)
  local used = redis.call('INCRBY', key, n)
  if used == n then redis.call('EXPIREAT', key, expire_at) end  -- the day's first count
  if n > 0 and used > limit then
    redis.call('DECRBY', key, n)
    return used - n
  end
  return nil
end
