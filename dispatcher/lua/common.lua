-- Prepended to every script below, after a generated preamble: the lifecycle table of
-- dispatcher/statuses.py (MOVES, BATCH_MOVES, WAITING, FINISHED) and RETENTION (seconds). The counters
-- that each status change keeps up to date: counts by status (dispatch:counts, and per day for finished
-- messages), the totals /metrics shows (dispatch:metrics:*) and, for a batch message, the batch's
-- counts, its finish time and its per-second send rate.

-- Status callbacks (the outbox). Each event waits in a chain, a list delivered in order by one task
-- at a time (tasks/callbacks.py): a message's own events in one chain, so the caller gets them in
-- the order the statuses moved. dispatch:cb:due holds each chain with events, scored by when it
-- should next be tried. An event is {url, attempts, account, event = the JSON body}: `account` (absent for
-- a reply nobody can attribute) picks the signing secret and who may see the delivery if it dies.

local function enqueue_event(chain, url, event, now, account)
  if not account then account = nil end  -- HMGET's false for a missing field: no key at all in the JSON
  local length = redis.call('RPUSH', 'dispatch:cb:chain:' .. chain, cjson.encode({url = url, attempts = 0,
                                                                                   account = account, event = event}))
  if length == 1 then redis.call('ZADD', 'dispatch:cb:due', now, chain) end
end

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

-- Dead deliveries `ids` (their records `records`, as read) leave the dead list, everyone's and their account's.
local function forget_dead(ids, records)
  redis.call('HDEL', 'dispatch:cb:dead', unpack(ids))
  redis.call('ZREM', 'dispatch:cb:dead:by-time', unpack(ids))
  for i, record in ipairs(records) do
    local account = record and cjson.decode(record).account
    if account then redis.call('ZREM', 'dispatch:cb:dead:by-time:' .. account, ids[i]) end
  end
end

-- A message moved to `new`: tell its callback_url (stored on the message at accept time, the
-- caller's own or STATUS_WEBHOOK_URL), if it has one. Event ids count the message's events, so a
-- message that fails, is retried and is sent gets distinct ids.
local function report_status(key, id, new, now, now_iso)
  if not FINISHED[new] then return end
  local f = redis.call('HMGET', key, 'callback_url', 'external_id', 'batch_id', 'last_error', 'account', 'key_id')
  if not f[1] then return end
  local number = redis.call('HINCRBY', key, 'events', 1)
  local err = cjson.null
  if new == 'failed' and f[4] then
    local last = cjson.decode(f[4])
    err = {code = tostring(last.code or ''), message = last.message or ''}
  end
  enqueue_event(id, f[1], {event_id = id .. '.' .. number, type = 'message.' .. new, message_id = id,
                           external_id = f[2] or cjson.null, batch_id = f[3] or cjson.null, status = new,
                           at = now_iso, error = err}, now, f[5] or f[6])
end

-- A batch has no row left to finish: one batch.completed event to the batch's callback_url (once per
-- completion: a batch whose failed rows are retried completes again, with a new event id).
local function report_batch(batch, bkey, now_iso, now)
  local f = redis.call('HMGET', bkey, 'callback_url', 'state', 'total', 'count_sent', 'count_delivered',
                       'count_read', 'count_failed', 'count_canceled', 'account', 'key_id')
  if not f[1] or redis.call('HSETNX', bkey, 'completed_reported', 1) == 0 then return end
  local completion = redis.call('HINCRBY', bkey, 'completions', 1)
  local counts = {sent = tonumber(f[4] or '0'), delivered = tonumber(f[5] or '0'), read = tonumber(f[6] or '0'),
                  failed = tonumber(f[7] or '0'), canceled = tonumber(f[8] or '0')}
  enqueue_event('batch:' .. batch, f[1], {event_id = batch .. '.completed.' .. completion, type = 'batch.completed',
                                          batch_id = batch, state = f[2], total = tonumber(f[3]),
                                          counts = counts, at = now_iso}, now, f[9] or f[10])
end

-- Retention counts from when a message finishes, never from when it was accepted: a message that waits
-- (scheduled far ahead, held by a daily cap, a paused sender or batch) keeps its record, its history and
-- its external_id for as long as it waits, and every finished one is kept RETENTION seconds (from the
-- generated preamble: MESSAGE_RETENTION_DAYS) after the end of the UTC day it finished in. Its count
-- lives in that day's bucket, dispatch:counts:<day>, which expires with it, so the counts always agree
-- with the records that exist; unfinished messages are counted in dispatch:counts, and never expire.
local DAY = 86400

local function kept_until(day)
  return (day + 1) * DAY + RETENTION
end

local function count_key(status, day)
  if FINISHED[status] then return 'dispatch:counts:' .. day end
  return 'dispatch:counts'
end

-- The keys that live and die with a message record.
local function message_keys(key)
  local keys = {key, key .. ':history'}
  -- Records written before accounts existed name their account key_id (dispatcher/accounts.py: owner).
  local f = redis.call('HMGET', key, 'account', 'external_id', 'key_id')
  local account = f[1] or f[3]
  if account and f[2] then keys[#keys + 1] = 'dispatch:ext:' .. account .. ':' .. f[2] end
  return keys
end

-- A message finished (on `day`) or was reopened (`day` false: an operator's retry of a failed one).
local function set_retention(key, day)
  for _, k in ipairs(message_keys(key)) do
    if day then redis.call('EXPIREAT', k, kept_until(day)) else redis.call('PERSIST', k) end
  end
  if day then redis.call('HSET', key, 'finished_day', day) else redis.call('HDEL', key, 'finished_day') end
end

local function count_move(key, old, new, now, now_iso)
  if old == new then return end
  -- A finished message's count lives in the bucket of the day it finished; anything else counts today.
  local day = FINISHED[old] and tonumber(redis.call('HGET', key, 'finished_day') or '') or math.floor(now / DAY)
  if old then redis.call('HINCRBY', count_key(old, day), old, -1) end
  if FINISHED[new] and not FINISHED[old] then
    day = math.floor(now / DAY)
    set_retention(key, day)
    redis.call('HINCRBY', count_key(new, day), new, 1)
    redis.call('EXPIREAT', count_key(new, day), kept_until(day))
  else
    if FINISHED[old] and not FINISHED[new] then set_retention(key, false) end
    redis.call('HINCRBY', count_key(new, day), new, 1)
  end
  local f = redis.call('HMGET', key, 'batch_id', 'provider', 'sender')
  -- For /metrics: how many messages reached each status, by provider and sender (never decremented).
  redis.call('HINCRBY', 'dispatch:metrics:statuses', new .. '\t' .. (f[2] or '') .. '\t' .. (f[3] or ''), 1)
  local batch = f[1]
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
      for _, k in ipairs({bkey, bkey .. ':messages'}) do redis.call('EXPIREAT', k, kept_until(day)) end
      local state = redis.call('HGET', bkey, 'state') or ''
      if (BATCH_MOVES[state] or {})['completed'] then redis.call('HSET', bkey, 'state', 'completed') end
      report_batch(batch, bkey, now_iso, now)
    end
  elseif FINISHED[old] and not FINISHED[new] then
    -- A failed row retried by an operator: the batch has work again.
    redis.call('HINCRBY', bkey, 'finished', -1)
    redis.call('HDEL', bkey, 'finished_at', 'completed_reported')
    for _, k in ipairs({bkey, bkey .. ':messages'}) do redis.call('PERSIST', k) end
    if redis.call('HGET', bkey, 'state') == 'completed' then redis.call('HSET', bkey, 'state', 'running') end  -- reopened
  end
end

-- Move one message to `new`: its status, a history entry, the counters; `deadline` keeps the
-- reconciler watching it (false: stop watching).
local function move(key, id, old, new, now, now_iso, entry, deadline)
  -- The table is the rule: a script asking for a move it does not allow is a bug, stopped here.
  if not (MOVES[old] or {})[new] then error('ILLEGAL_MOVE ' .. tostring(old) .. ' -> ' .. new) end
  redis.call('HSET', key, 'status', new, 'updated_at', now_iso)
  redis.call('RPUSH', key .. ':history', entry)
  if deadline then
    redis.call('ZADD', 'dispatch:pending', deadline, id)
  else
    redis.call('ZREM', 'dispatch:pending', id)
  end
  count_move(key, old, new, now, now_iso)
  -- dispatch:failed lists failed messages by when they failed, for operators (GET /v1/messages?status=failed).
  if new == 'failed' then
    redis.call('ZADD', 'dispatch:failed', now, id)
  elseif old == 'failed' then
    redis.call('ZREM', 'dispatch:failed', id)
  end
  report_status(key, id, new, now, now_iso)
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
-- dispatch:sender:<sender id> overrides them; a rate of 0 means not paced. A message that
-- must wait reserves its slot instead of holding a worker: it is put in
-- dispatch:due at its slot time, and when it comes back within SLOT_GRACE seconds of the slot it
-- goes without asking again. Returns how long the message must wait (0: send now).
-- A paused sender (auto-pause, or an operator) holds its messages in dispatch:sender:...:held until
-- it is resumed, and pace returns -1. A sender with a daily cap (or a warm-up ramp, a cap that grows
-- day by day) holds what is over it until the next UTC midnight.
local SLOT_GRACE = 2

-- `<provider>:<sender>` as every key of a sender spells it (dispatch:sender:<id>, its :held and
-- :outcomes, dispatch:pace:<id>, dispatch:sent-today:<id>:<day>), with the sender's `%` and `:`
-- percent-encoded so that a sender named `x:held` never owns x's held set. The same as sender_id in
-- dispatcher/senders.py.
local function sender_id(provider, sender)
  return provider .. ':' .. (string.gsub(sender or '', '[%%:]', {['%'] = '%25', [':'] = '%3A'}))
end

-- A number in [0, 1) drawn from the message id and the clock: scripts get no random source of their
-- own that is safe to rely on across Redis versions, and a hash is enough for jitter.
local function unit_random(id)
  local seed = redis.sha1hex(id .. redis.call('TIME')[2])
  return tonumber(string.sub(seed, 1, 8), 16) / 4294967296
end

local function hold_until(key, id, at)
  redis.call('HSET', key, 'paced_until', at)
  redis.call('ZADD', 'dispatch:due', at, id)
  redis.call('ZADD', 'dispatch:pending', at + 60, id)
end

local function pace(key, id, provider, sender, limits, now)
  local limit = limits[provider] or {rate = 0, burst = 1}
  local sender_key = 'dispatch:sender:' .. sender_id(provider, sender)
  -- A sender's own settings (PUT /v1/senders/...) win over its provider's defaults.
  local own = redis.call('HMGET', sender_key, 'rate', 'burst', 'state', 'daily_cap', 'warmup_start',
                        'warmup_growth', 'first_day')
  if own[3] == 'paused' then
    redis.call('SADD', sender_key .. ':held', id)
    redis.call('ZADD', 'dispatch:pending', now + 3600, id)
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

-- Auto-pause: keep each sender's last `window` outcomes (1 = the attempt failed) and a running count
-- of the failures among them; when `ratio` of them failed, pause the sender. Returns true when this
-- outcome paused it. O(1) per outcome: it runs for every message sent.
local function note_outcome(provider, sender, failed, window, ratio, now_iso)
  if window <= 0 then return false end
  local sender_key = 'dispatch:sender:' .. sender_id(provider, sender)
  local outcomes = sender_key .. ':outcomes'
  local change = failed and 1 or 0
  local length = redis.call('LPUSH', outcomes, change)
  if length > window then change = change - tonumber(redis.call('RPOP', outcomes)) end
  local failures = redis.call('HINCRBY', sender_key, 'window_failures', change)
  if length < window or failures < ratio * window then return false end
  if redis.call('HGET', sender_key, 'state') == 'paused' then return false end
  redis.call('HSET', sender_key, 'state', 'paused', 'paused_at', now_iso,
             'paused_reason', failures .. ' of the last ' .. window .. ' sends failed')
  redis.call('HINCRBY', 'dispatch:metrics', 'sender_auto_pauses_total', 1)
  return true
end

-- The daily send window is closed until `opens`: hold a waiting message as `scheduled` until then.
local function hold_for_window(key, id, status, opens, now, now_iso)
  redis.call('HSET', key, 'scheduled_for', opens)
  redis.call('ZADD', 'dispatch:scheduled', opens, id)
  move(key, id, status, 'scheduled', now, now_iso, cjson.encode({status = 'scheduled', at = now_iso,
       reason = 'send window'}), opens + 60)
end

-- A provider's report of `new` for message `id`: drop a report seen before, move the status forward
-- only (from one of `allowed`, comma-separated), keep it in the history (marked ignored when the
-- message is already past it), set `fields` ({name, value, ...}). Returns 'ok', 'duplicate', 'same'
-- or 'stale'.
local function apply_report(key, id, new, allowed, report_key, entry, now, now_iso, fields)
  if redis.call('HSETNX', key, 'report:' .. report_key, 1) == 0 then return 'duplicate' end
  local status = redis.call('HGET', key, 'status')
  if status == new then return 'same' end
  if not string.find(',' .. allowed .. ',', ',' .. status .. ',', 1, true) then
    local ignored = cjson.decode(entry)
    ignored.ignored = 'message already ' .. status
    redis.call('RPUSH', key .. ':history', cjson.encode(ignored))
    return 'stale'
  end
  if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
  move(key, id, status, new, now, now_iso, entry, false)
  return 'ok'
end

-- Reports that came before we recorded `sent` (the provider answered our webhook before our own call
-- returned, or a chunk was still sending the rest of its group) wait in dispatch:early:<provider>:<its
-- id> (report.lua parks them); the move to `sent` applies them here, in the order they came.
local function apply_early_reports(key, id, provider, provider_id, now, now_iso)
  local early = 'dispatch:early:' .. provider .. ':' .. provider_id
  local parked = redis.call('LRANGE', early, 0, -1)
  if #parked == 0 then return end
  redis.call('DEL', early)
  for _, raw in ipairs(parked) do
    local report = cjson.decode(raw)
    local outcome = apply_report(key, id, report.status, report.allowed, report.report, report.entry, now, now_iso,
                                 report.fields)
    redis.call('HINCRBY', 'dispatch:metrics:reports', provider .. '\t' .. outcome, 1)
  end
end
