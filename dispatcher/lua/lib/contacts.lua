-- A contact's rules (dispatcher/contacts.py): each account's opt-out list, the 24-hour customer-service window
-- of each sender, the messages an account sends one contact a day. Needs outbox and day_index
-- (dispatcher/scripts.py puts them first). The keys: dispatch:optouts:<account> (numbers by when they opted
-- out), its history in dispatch:contact:<account>:<number>, dispatch:contact-day:<account>:<day> (number →
-- messages that day, kept when the account has a cap),
-- dispatch:window:<sender id>:<day> (number → when it last wrote to that sender that UTC day: today's and
-- yesterday's hold every open window, and a bulk slice reads them in one call each), dispatch:reach:<number>
-- (in:<sender id> → when it last wrote to that sender, for its view) and the day index sent-to:<sender id>
-- (lib/day_index.lua: the number → the account that last sent to it from there).
local WINDOW = 86400
local CONTACT_LOG_KEEP = 50

local function opted_out(account, phone)
  return redis.call('ZSCORE', 'dispatch:optouts:' .. account, phone) ~= false
end

local function window_key(sid, day)
  return 'dispatch:window:' .. sid .. ':' .. day
end

-- For each of `phones`, whether its window with sender `sid` is open at `now` (it wrote within 24 hours), and
-- whether all are: one HMGET of today's hash, and one of yesterday's only when some phone is not in today's.
local function windows_open(phones, sid, now)
  local day = math.floor(now / 86400)
  local open, all = {}, true
  local today = redis.call('HMGET', window_key(sid, day), unpack(phones))
  for i = 1, #phones do
    open[i] = tonumber(today[i] or '0') + WINDOW > now
    all = all and open[i]
  end
  if all then return open, true end
  local yesterday = redis.call('HMGET', window_key(sid, day - 1), unpack(phones))
  all = true
  for i = 1, #phones do
    open[i] = open[i] or tonumber(yesterday[i] or '0') + WINDOW > now
    all = all and open[i]
  end
  return open, all
end

-- What the request's `rules` (dispatcher/contacts.py Contacts.rules) say of each of `phones` (one, or a slice of
-- bulk rows) before any is counted: 'opted_out', 'outside_session_window', or false. Reads only, a few calls
-- whatever the number of phones. `rules.window` lists the senders that may carry the message when the window
-- applies (a pool's members): it may go when the contact's window with one is open, or one has a fallback
-- template.
local function contact_refusals(account, phones, rules)
  local refused = {}
  for i = 1, #phones do refused[i] = false end
  if rules.optouts then
    local scores = redis.call('ZMSCORE', 'dispatch:optouts:' .. account, unpack(phones))
    for i = 1, #phones do
      if scores[i] then refused[i] = 'opted_out' end
    end
  end
  if not rules.window or rules.fallback then return refused end
  local open = {}
  for _, sid in ipairs(rules.window) do
    local with_sid, all = windows_open(phones, sid, rules.now)
    if all or redis.call('HEXISTS', 'dispatch:sender:' .. sid, 'fallback_template') == 1 then return refused end
    for i = 1, #phones do open[i] = open[i] or with_sid[i] end
  end
  for i = 1, #phones do
    if not refused[i] and not open[i] then refused[i] = 'outside_session_window' end
  end
  return refused
end

-- Count a new message from `account` to `phone` in the contact's day: 'contact_cap_reached' (and nothing counted)
-- when that would pass `rules.cap`, else false. Without a cap nothing is counted: a count is a hash field a
-- contact a day, the largest part of what the rules cost a bulk row.
local function count_contact(account, phone, rules)
  if rules.cap <= 0 then return false end
  local day = rules.day_key
  if not day then
    day = 'dispatch:contact-day:' .. account .. ':' .. rules.day
    rules.day_key = day  -- built once a script call, not once a row
  end
  local count = redis.call('HINCRBY', day, phone, 1)
  if count == 1 and not rules.expiry_set then
    redis.call('EXPIREAT', day, rules.expires)  -- the day's counts expire the day after
    rules.expiry_set = true
  end
  if rules.cap > 0 and count > rules.cap then
    redis.call('HINCRBY', day, phone, -1)
    return 'contact_cap_reached'
  end
  return false
end

-- Give back a message count_contact counted that was refused after all (by the account's daily quota).
local function uncount_contact(account, phone, rules)
  if rules.cap <= 0 then return end
  redis.call('HINCRBY', 'dispatch:contact-day:' .. account .. ':' .. rules.day, phone, -1)
end

-- A message was sent to `phone` from sender `sid` for `account` at `now`: a reply through that sender is this
-- account's. Which accounts a sender has sent for is noted once per script (a chunk records many sends of one
-- sender).
local accounts_noted = {}
local function note_reach(phone, sid, account, now)
  day_index_put('sent-to:' .. sid, phone, account, now)
  local accounts = 'dispatch:sender:' .. sid .. ':accounts'
  if not accounts_noted[accounts .. '\0' .. account] then
    accounts_noted[accounts .. '\0' .. account] = true
    redis.call('SADD', accounts, account)
  end
end

-- The contact wrote to sender `sid` at `at`: its window with that sender is open for 24 hours.
local function note_inbound(phone, sid, at)
  local day = math.floor(at / 86400)
  redis.call('HSET', window_key(sid, day), phone, at)
  redis.call('EXPIREAT', window_key(sid, day), (day + 2) * 86400)
  local reach = 'dispatch:reach:' .. phone
  redis.call('HSET', reach, 'in:' .. sid, at)
  redis.call('EXPIRE', reach, RETENTION > 0 and RETENTION or 86400)
end

-- Whose a contact's word through sender `sid` is: the account of the message it answers, else the one that last
-- sent to it from that sender, else every account that has sent from that sender, else `fallback` (every
-- configured account): an opt-out must never be lost for want of an owner.
local function reply_accounts(phone, sid, answered_account, fallback, now)
  if answered_account then return {answered_account} end
  -- Noted before the day index, in the number's reach hash: read until those entries have expired.
  local last = day_index_find('sent-to:' .. sid, phone, now)
    or redis.call('HGET', 'dispatch:reach:' .. phone, 'by:' .. sid)
  if last then return {last} end
  local senders = redis.call('SMEMBERS', 'dispatch:sender:' .. sid .. ':accounts')
  if #senders > 0 then return senders end
  return fallback
end

-- Put `phone` on `account`'s opt-out list (`out`) or take it off, with a history entry; `change` holds how it
-- came ({source, at, ...}). When that changed its state, queue a contact.opted_out / contact.opted_in event to
-- `url` (none when empty) on `chain`. Returns true when it changed.
local function set_opt_out(account, phone, out, change, now, url, chain)
  local list = 'dispatch:optouts:' .. account
  local changed
  if out then
    changed = redis.call('ZADD', list, 'NX', now, phone) == 1
  else
    changed = redis.call('ZREM', list, phone) == 1
  end
  if not changed then return false end
  local state = out and 'opted_out' or 'opted_in'
  change.state = state
  local log = 'dispatch:contact:' .. account .. ':' .. phone
  redis.call('LPUSH', log, cjson.encode(change))
  redis.call('LTRIM', log, 0, CONTACT_LOG_KEEP - 1)
  if url ~= '' then
    local digest = string.sub(redis.sha1hex(account .. '\0' .. phone .. '\0' .. now), 1, 24)
    enqueue_event(chain, url, {event_id = 'contact.' .. state .. '.' .. digest,
                               type = 'contact.' .. state, recipient_phone = phone, source = change.source,
                               keyword = change.keyword or cjson.null, provider = change.provider or cjson.null,
                               sender = change.sender or cjson.null, at = change.at}, now, account)
  end
  return true
end
