-- A sender's identity in key names, its settings as a claim reads them, and its auto-pause (advance.lua).
-- Prepended by dispatcher/scripts.py.

-- `<provider>:<sender>` as every key of a sender spells it (dispatch:sender:<id>, its :held and
-- :outcomes, dispatch:pace:<id>, dispatch:sent-today:<id>:<day>), with the sender's `%` and `:`
-- percent-encoded so that a sender named `x:held` never owns x's held set. The same as sender_id in
-- dispatcher/senders.py.
local function sender_id(provider, sender)
  return provider .. ':' .. (string.gsub(sender or '', '[%%:]', {['%'] = '%25', [':'] = '%3A'}))
end

-- A sender's own settings (PUT /v1/senders/...; `state` is 'paused' while it is paused), as {rate, burst, state,
-- daily_cap, warmup_start, warmup_growth, first_day}: read once per script, because a group claim asks for the
-- same sender row after row and no claim changes them (its warm-up's first_day is written through this table).
local settings_read = {}
local function sender_settings(id)
  local own = settings_read[id]
  if not own then
    own = redis.call('HMGET', 'dispatch:sender:' .. id, 'rate', 'burst', 'state', 'daily_cap', 'warmup_start',
                     'warmup_growth', 'first_day')
    settings_read[id] = own
  end
  return own
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
