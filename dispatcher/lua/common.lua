-- Prepended to every script below. Statuses that end a message's sending, and the counters that
-- each status change keeps up to date: global counts by status (dispatch:counts) and, for a batch
-- message, the batch's counts, its finish time and its per-second send rate.
local FINISHED = {sent = true, delivered = true, read = true, failed = true, canceled = true}

local function count_move(key, old, new, now, now_iso)
  if old == new then return end
  if old then redis.call('HINCRBY', 'dispatch:counts', old, -1) end
  redis.call('HINCRBY', 'dispatch:counts', new, 1)
  local batch = redis.call('HGET', key, 'batch_id')
  if not batch then return end
  local bkey = 'dispatch:batch:' .. batch
  if old then redis.call('HINCRBY', bkey, 'count_' .. old, -1) end
  redis.call('HINCRBY', bkey, 'count_' .. new, 1)
  if FINISHED[new] and not FINISHED[old] then
    if new == 'sent' or new == 'failed' then
      redis.call('HINCRBY', bkey .. ':rate', math.floor(now), 1)
      redis.call('EXPIRE', bkey .. ':rate', 120)
    end
    local finished = redis.call('HINCRBY', bkey, 'finished', 1)
    if finished >= tonumber(redis.call('HGET', bkey, 'total') or '0') then
      redis.call('HSET', bkey, 'finished_at', now_iso)
      if redis.call('HGET', bkey, 'state') ~= 'canceled' then redis.call('HSET', bkey, 'state', 'completed') end
    end
  end
end

-- Move one message to `new`: its status, a history entry, the counters; `deadline` keeps the
-- reconciler watching it (false: stop watching).
local function move(key, id, old, new, now, now_iso, entry, deadline)
  redis.call('HSET', key, 'status', new, 'updated_at', now_iso)
  redis.call('RPUSH', key .. ':history', entry)
  local ttl = redis.call('TTL', key)
  if ttl > 0 then redis.call('EXPIRE', key .. ':history', ttl) end
  if deadline then
    redis.call('ZADD', 'dispatch:pending', deadline, id)
  else
    redis.call('ZREM', 'dispatch:pending', id)
  end
  count_move(key, old, new, now, now_iso)
end

-- The state of the message's batch, or false for a message sent on its own.
local function batch_state(key)
  local batch = redis.call('HGET', key, 'batch_id')
  if not batch then return false end
  return redis.call('HGET', 'dispatch:batch:' .. batch, 'state')
end

-- Claim one message for sending: queued/retrying → sending, with a lease; returns the attempt number.
local function claim(key, id, old, now, lease_until, now_iso)
  local attempt = redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'lease_until', lease_until)
  move(key, id, old, 'sending', now, now_iso, cjson.encode({status = 'sending', at = now_iso, attempt = attempt}),
       lease_until)
  return attempt
end

-- Pacing: one GCRA limiter per sender (provider + sender id), shared by every worker. `limits` maps
-- a provider to its default {rate = messages per second, burst = messages}; a sender's own hash
-- dispatch:sender:<provider>:<sender> overrides them; a rate of 0 means not paced. A message that
-- must wait reserves its slot instead of holding a worker: it is put in
-- dispatch:due at its slot time, and when it comes back within SLOT_GRACE seconds of the slot it
-- goes without asking again. Returns how long the message must wait (0: send now).
local SLOT_GRACE = 2
local function pace(key, id, provider, sender, limits, now)
  local limit = limits[provider] or {rate = 0, burst = 1}
  -- A sender's own settings (PUT /v1/senders/...) win over its provider's defaults.
  local own = redis.call('HMGET', 'dispatch:sender:' .. provider .. ':' .. (sender or ''), 'rate', 'burst')
  local rate, burst = tonumber(own[1] or limit.rate), tonumber(own[2] or limit.burst)
  local slot = tonumber(redis.call('HGET', key, 'paced_until') or '0')
  if slot > 0 and now < slot then return slot - now end
  if slot > 0 and now < slot + SLOT_GRACE then
    redis.call('HDEL', key, 'paced_until')
    return 0
  end
  local limiter = 'dispatch:pace:' .. provider .. ':' .. (sender or '')
  local tat = math.max(tonumber(redis.call('GET', limiter) or '0'), now)
  local at
  if rate <= 0 then
    -- Not paced, but the provider may have asked us to hold back (hold_sender.lua) until `tat`.
    if tat <= now then return 0 end
    at = tat
  else
    local interval = 1 / rate
    at = math.max(tat - (math.max(1, burst) - 1) * interval, now)
    redis.call('SET', limiter, tat + interval, 'PX', math.ceil((tat + interval - now) * 1000) + 60000)
  end
  if at <= now then
    redis.call('HDEL', key, 'paced_until')
    return 0
  end
  redis.call('HSET', key, 'paced_until', at)
  redis.call('ZADD', 'dispatch:due', at, id)
  redis.call('ZADD', 'dispatch:pending', at + 60, id)
  return at - now
end
