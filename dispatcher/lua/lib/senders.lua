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

-- Auto-pause: each sender keeps its last `window` outcomes (1 = the attempt failed; newest first in
-- dispatch:sender:<id>:outcomes) and a running count of the failures among them (window_failures); when `ratio`
-- of them failed, it is paused. One call records many outcomes (advance.lua: a chunk's group), so each sender's
-- window is read and written once a call, not once an outcome: `note_outcome` works on a copy (its length, its
-- failures, the outcomes it pushes out, read as needed) and `write_outcomes` writes it back when the call ends.
local windows = {}

local function window_of(sender_key)
  local w = windows[sender_key]
  if not w then
    local list = sender_key .. ':outcomes'
    local length = redis.call('LLEN', list)
    w = {list = list, old_length = length, length = length, new = {}, dropped = 0, old = {},
         failures = tonumber(redis.call('HGET', sender_key, 'window_failures') or '0')}
    windows[sender_key] = w
  end
  return w
end

-- The k-th outcome this call pushes out of window `w`, oldest first: the list's own, from its tail (read a
-- hundred at a time), then the call's own new ones, in the order they came.
local function pushed_out(w, k)
  if k > w.old_length then return w.new[k - w.old_length] end
  if not w.old[k] then
    local upto = math.min(w.old_length, k + 99)
    local values = redis.call('LRANGE', w.list, -upto, -k)
    for i, value in ipairs(values) do w.old[upto - i + 1] = tonumber(value) end
  end
  return w.old[k]
end

-- One more outcome of a sender's; returns true when it paused the sender.
local function note_outcome(provider, sender, failed, window, ratio, now_iso)
  if window <= 0 then return false end
  local sender_key = 'dispatch:sender:' .. sender_id(provider, sender)
  local w = window_of(sender_key)
  local change = failed and 1 or 0
  w.new[#w.new + 1] = change
  local length = w.length + 1
  w.length = length
  if length > window then
    w.dropped = w.dropped + 1
    w.length = length - 1
    change = change - pushed_out(w, w.dropped)
  end
  w.failures = w.failures + change
  if length < window or w.failures < ratio * window then return false end
  if redis.call('HGET', sender_key, 'state') == 'paused' then return false end
  redis.call('HSET', sender_key, 'state', 'paused', 'paused_at', now_iso,
             'paused_reason', w.failures .. ' of the last ' .. window .. ' sends failed')
  redis.call('HINCRBY', 'dispatch:metrics', 'sender_auto_pauses_total', 1)
  return true
end

-- The windows `note_outcome` changed, written back: the new outcomes in front, the pushed-out ones cut off.
local function write_outcomes()
  for sender_key, w in pairs(windows) do
    redis.call('LPUSH', w.list, unpack(w.new))
    redis.call('LTRIM', w.list, 0, w.length - 1)
    redis.call('HSET', sender_key, 'window_failures', w.failures)
  end
  windows = {}
end
