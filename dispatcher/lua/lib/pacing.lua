-- A sender's pace, asked by the claims (claim.lua, claim_group.lua). Needs lifecycle and senders
-- (dispatcher/scripts.py puts them first).

-- Pacing: one GCRA limiter per sender (provider + sender id), shared by every worker. `limits` maps
-- a provider to its default {rate = messages per second, burst = messages}; a sender's own hash
-- dispatch:sender:<sender id> overrides them; a rate of 0 means not paced. A message that
-- must wait reserves its slot instead of holding a worker: it is put in
-- dispatch:due at its slot time, and when it comes back within SLOT_GRACE seconds of the slot it
-- goes without asking again. Returns how long the message must wait (0: send now).
-- A paused sender (auto-pause, or an operator) holds its messages in dispatch:sender:...:held until
-- it is resumed, and pace returns -1. A sender with a daily cap (or a warm-up ramp, a cap that grows
-- day by day) holds what is over it until the next UTC midnight.
local SLOT_GRACE = 2

-- A number in [0, 1) drawn from the message id and the clock: scripts get no random source of their
-- own that is safe to rely on across Redis versions, and a hash is enough for jitter.
local function unit_random(id)
  local seed = redis.sha1hex(id .. redis.call('TIME')[2])
  return tonumber(string.sub(seed, 1, 8), 16) / 4294967296
end

local function hold_until(key, id, at)
  redis.call('HSET', key, 'paced_until', at)
  redis.call('ZADD', 'dispatch:due', at, id)
  watch(id, at + 60)
end

local function pace(key, id, provider, sender, limits, now)
  local limit = limits[provider] or {rate = 0, burst = 1}
  local sender_key = 'dispatch:sender:' .. sender_id(provider, sender)
  -- A sender's own settings (PUT /v1/senders/...) win over its provider's defaults.
  local own = sender_settings(sender_id(provider, sender))
  if own[3] == 'paused' then
    redis.call('SADD', sender_key .. ':held', id)
    watch(id, now + 3600)
    return -1
  end
  local rate, burst = tonumber(own[1] or limit.rate), tonumber(own[2] or limit.burst)
  local slot = tonumber(redis.call('HGET', key, 'paced_until') or '0')
  if slot > 0 and now < slot then return slot - now end
  if slot > 0 and now < slot + SLOT_GRACE then
    redis.call('HDEL', key, 'paced_until')
    return 0
  end
  local cap = tonumber(own[4] or '0')
  local day = math.floor(now / 86400)
  local warmup = tonumber(own[5] or '0')
  if warmup > 0 then
    -- Warm-up: a new number's cap starts at `warmup_start` and grows by `warmup_growth` a day.
    local first_day = tonumber(own[7] or '-1')
    if first_day < 0 then
      first_day = day
      own[7] = day
      redis.call('HSET', sender_key, 'first_day', day)
    end
    local ramp = math.floor(warmup * tonumber(own[6] or '1.5') ^ (day - first_day))
    if cap <= 0 or ramp < cap then cap = ramp end
  end
  -- A message is counted against its sender's cap once a day: one that was counted, then held for its
  -- pacing slot and released late, must not take a second place in the day's allowance.
  if cap > 0 and tonumber(redis.call('HGET', key, 'capped_day') or '-1') ~= day then
    local counter = 'dispatch:sent-today:' .. sender_id(provider, sender) .. ':' .. day
    if tonumber(redis.call('GET', counter) or '0') >= cap then
      hold_until(key, id, (day + 1) * 86400)
      return (day + 1) * 86400 - now
    end
    redis.call('INCR', counter)
    redis.call('EXPIRE', counter, 172800)
    redis.call('HSET', key, 'capped_day', day)
  end
  local limiter = 'dispatch:pace:' .. sender_id(provider, sender)
  local tat = math.max(tonumber(redis.call('GET', limiter) or '0'), now)
  local at
  if rate <= 0 then
    -- Not paced, but the provider may have asked us to hold back (hold_sender.lua) until `tat`.
    if tat <= now then return 0 end
    at = tat
  else
    local interval = 1 / rate
    at = math.max(tat - (math.max(1, burst) - 1) * interval, now)
    -- Jitter (unofficial numbers): each gap varies by up to ±jitter of the interval, so the rhythm
    -- is never constant; the average rate stays the same.
    local jitter = tonumber(limit.jitter or 0)
    local gap = interval * (1 + jitter * (2 * unit_random(id) - 1))
    redis.call('SET', limiter, tat + gap, 'PX', math.ceil((tat + gap - now) * 1000) + 60000)
  end
  if at <= now then
    redis.call('HDEL', key, 'paced_until')
    return 0
  end
  hold_until(key, id, at)
  return at - now
end
