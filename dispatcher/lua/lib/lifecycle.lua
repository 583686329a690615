-- A message's moves, its counters, its history and its retention. Prepended by dispatcher/scripts.py, after a
-- generated preamble: the lifecycle table of dispatcher/statuses.py (MOVES, BATCH_MOVES, WAITING, FINISHED)
-- and RETENTION (seconds). Needs outbox (a move queues its callback) and retention. The counters that each
-- status change keeps up to date: counts by status (dispatch:counts, and per day for finished messages), the
-- totals /metrics shows (dispatch:metrics:*) and, for a batch message, the batch's counts, its finish time and
-- its per-second send rate.

-- A finished message's count lives in the bucket of the day it finished (lib/retention.lua),
-- dispatch:counts:<day>, which expires with it, so the counts always agree with the records that exist;
-- unfinished messages are counted in dispatch:counts, and never expire.

-- What a script changes over and over is gathered while it runs and written once, when it ends (`flush_deferred`:
-- dispatcher/scripts.py calls it after every script that moves messages, even one stopped by an error): a group
-- of 100 claims in one batch then costs a few HINCRBYs and one ZADD, not 600 calls. Gathered: the counters no
-- script reads back (a batch's counts are written before its completion event reads them, see count_move), and
-- which messages the reconciler watches (`watch`, written to dispatch:pending; a message's last watch wins).
local deltas = {}    -- key -> {field -> how much it changes}
local expiries = {}  -- key -> when it expires (EXPIREAT), set after its counts are written
local lifetimes = {}  -- key -> how long it lives from now, in Redis's own time (EXPIRE)
local watched = {}   -- message id -> until when the reconciler watches it, or false: no longer

local function bump(key, field, by)
  local fields = deltas[key]
  if not fields then
    fields = {}
    deltas[key] = fields
  end
  fields[field] = (fields[field] or 0) + by
end

-- Keep message `id` watched by the reconciler until `deadline` (false: stop watching it).
local function watch(id, deadline)
  watched[id] = deadline
end

-- `command` on `key` with `values`, a thousand at a time (a Lua call takes only so many arguments).
local function call_in_slices(command, key, values)
  for first = 1, #values, 1000 do
    redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
end

local function flush_deferred()
  for key, fields in pairs(deltas) do
    for field, by in pairs(fields) do redis.call('HINCRBY', key, field, by) end
  end
  for key, at in pairs(expiries) do redis.call('EXPIREAT', key, at) end
  for key, seconds in pairs(lifetimes) do redis.call('EXPIRE', key, seconds) end
  local adds, removes = {}, {}
  for id, deadline in pairs(watched) do
    if deadline then
      adds[#adds + 1] = deadline
      adds[#adds + 1] = id
    else
      removes[#removes + 1] = id
    end
  end
  call_in_slices('ZADD', 'dispatch:pending', adds)
  call_in_slices('ZREM', 'dispatch:pending', removes)
  deltas, expiries, lifetimes, watched = {}, {}, {}, {}
end

local function count_key(status, day)
  if FINISHED[status] then return 'dispatch:counts:' .. day end
  return 'dispatch:counts'
end

-- A message's history after `queued` (dispatcher/history.py says how its steps are written, and reads them
-- back). While they are short, the steps are tokens in the record, space-separated: the reports' (a token
-- ending in '!', or '!?<status>') in its `reports` field, the others in `steps`, which hold the steps before
-- every report (a report comes after `sent`). A record keeps no value longer than hash-max-ziplist-value
-- (64 bytes), or Redis would turn its compact listpack into a hashtable of three times the size. A JSON step,
-- a token more than fits, or a step after a report moves the history to its log (dispatch:msg:<id>:log, a
-- step a line), and `steps` says '+': from then on the log holds it all.
local STEPS_MAX = 62  -- with room for ' +'

-- The epoch milliseconds of `now` as dispatcher.times.millis writes them (microseconds rounded, then truncated):
-- a number and its text. A script has one `now`, so it is worked out once, not once a message.
local millis_of = {}
local function millis(now)
  local known = millis_of[now]
  if not known then
    local seconds = math.floor(now)
    local ms = seconds * 1000 + math.floor(math.floor((now - seconds) * 1000000 + 0.5) / 1000)
    known = {ms, string.format('%d', ms)}
    millis_of[now] = known
  end
  return known[2], known[1]
end

local function step(status, now, attempt)
  if attempt then return status .. '@' .. millis(now) .. '#' .. attempt end
  return status .. '@' .. millis(now)
end

-- When the message last moved, by the tokens of its history (`created`: the record's t0, its creation, epoch ms,
-- or nil in a record written before, whose own updated_at says it): the time of the last one not ignored.
local function last_moved(tokens, created)
  if not created then return nil end
  local moved = created
  for since, at, rest in string.gmatch(tokens, '[a-z_]+([@+])(%-?%d+)(%S*)') do
    if not string.find(rest, '?', 1, true) then moved = tonumber(at) + (since == '+' and created or 0) end
  end
  return moved
end

-- The record's `steps`, and its `reports` when they change (else nil), once `entry` is added to the history
-- they held (`created`: the record's t0, its creation, in epoch milliseconds or, in a record written before, ISO
-- text): written with the move. A token's time is kept relative to `created`.
local function history_after(key, steps, reports, created, entry)
  local log = key .. ':log'
  created = tonumber(created)
  local sign = created and string.find(entry, '@', 1, true)
  if sign and string.byte(entry, 1) ~= 123 then  -- `status@<epoch ms>...` → `status+<ms since created>...`
    local _, last = string.find(entry, '^%d+', sign + 1)
    local at = tonumber(string.sub(entry, sign + 1, last))
    entry = string.sub(entry, 1, sign - 1) .. '+' .. string.format('%d', at - created) .. string.sub(entry, last + 1)
  end
  if not steps then
    -- The first step since the record was created, or one of a history logged before `steps` existed.
    steps = redis.call('EXISTS', log) == 1 and '+' or ''
  end
  if steps == '+' then
    -- The log is rewritten whole, not appended to: Redis keeps a string SET at its exact size, where APPEND
    -- reserves as much again for the next one; KEEPTTL keeps a finished message's retention.
    redis.call('SET', log, (redis.call('GET', log) or '') .. entry .. '\n', 'KEEPTTL')
    return '+', nil
  end
  reports = reports or ''
  if string.byte(entry, 1) ~= 123 then  -- not a JSON object
    if string.find(entry, '!', 1, true) then
      local joined = reports == '' and entry or reports .. ' ' .. entry
      if #joined <= STEPS_MAX then return steps, joined end
    elseif reports == '' then
      local joined = steps == '' and entry or steps .. ' ' .. entry
      if #joined <= STEPS_MAX then return joined, nil end
    end
  end
  local lines = ''
  for _, tokens in ipairs({steps, reports}) do
    if tokens ~= '' then lines = lines .. string.gsub(tokens, ' ', '\n') .. '\n' end
  end
  redis.call('SET', log, lines .. entry .. '\n')
  local ttl = redis.call('PTTL', key)  -- the log lives as long as its record (set_retention, for what follows)
  if ttl > 0 then redis.call('PEXPIRE', log, ttl) end
  if reports ~= '' then redis.call('HDEL', key, 'reports') end
  return '+', nil, last_moved(steps .. ' ' .. reports, created)
end

-- The fields a move writes for its step `entry`: {'steps', ..., ['reports', ...]} (see history_after), and
-- `updated_at` when its history leaves the record, which said until then when it last moved. `known`: the
-- record's steps, reports and t0 as the caller read them in this script (see `move`), or nil.
local function history_fields(key, entry, known)
  local got = known and {known.steps, known.reports, known.created_at}
              or redis.call('HMGET', key, 'steps', 'reports', 't0')
  if not got[3] then got[3] = written_before(key, 't0')[1] end
  local steps, reports, moved = history_after(key, got[1] or nil, got[2] or nil, got[3], entry)
  local fields = {'steps', steps}
  if reports then
    fields[3], fields[4] = 'reports', reports
  elseif moved then
    fields[3], fields[4] = 'updated_at', string.format('%d', moved)
  end
  return fields
end

-- One more step of a message's history, on its own (a move writes its steps with its status).
local function add_history(key, entry)
  redis.call('HSET', key, unpack(history_fields(key, entry)))
end

-- A message accepted before its id followed from its external_id (its id a UUID of version 4, not 8: see
-- dispatcher/names.py) may have keys of the layout before: an external_id key (create.lua) and its history as a
-- list. Told from the key, so that today's messages pay no read for them.
local function may_have_legacy_keys(key)
  return string.sub(key, -22, -22) ~= '8'
end

-- The keys that live and die with a message record (`logged`: its history is in its log, `steps` says '+').
local function message_keys(key, logged)
  local keys = {key}
  if logged then keys[2] = key .. ':log' end
  if may_have_legacy_keys(key) then
    keys[#keys + 1] = key .. ':history'
    -- Records written before accounts existed name their account key_id (dispatcher/accounts.py: owner).
    local f = redis.call('HMGET', key, 'account', 'external_id', 'key_id')
    local account = f[1] or f[3]
    if account and f[2] then keys[#keys + 1] = 'dispatch:ext:' .. account .. ':' .. f[2] end
  end
  return keys
end

-- A message finished as `status` (on `day`: `move` writes it on the record) or was reopened (`day` false: an
-- operator's retry of a failed one). Its content (lib/content.lua) is kept with it when it failed, for that
-- retry; otherwise nothing will read it again, and it goes now.
local function set_retention(key, day, status, logged)
  local keys = message_keys(key, logged)
  if status == 'failed' or not day then
    keys[#keys + 1] = key .. ':content'
  else
    redis.call('DEL', key .. ':content')
  end
  for _, k in ipairs(keys) do
    if day then redis.call('EXPIREAT', k, kept_until(day)) else redis.call('PERSIST', k) end
  end
  if day then
    -- What only a waiting or sending message needs goes too: every byte of a record is kept for the retention.
    redis.call('HDEL', key, 'lease_until', 'next_attempt_at', 'paced_until')
  else
    redis.call('HDEL', key, 'fday', 'finished_day')  -- and its name before (dispatcher/record_names.py)
  end
end

-- How many rows batch `bkey` has: read once per script (no script that moves messages adds rows).
local totals_read = {}
local function batch_total(bkey)
  if not totals_read[bkey] then totals_read[bkey] = tonumber(redis.call('HGET', bkey, 'total') or '0') end
  return totals_read[bkey]
end

-- `record`: the fields of the message that a move reads (`move` reads them once, see RECORD_FIELDS), and
-- `logged`, whether its history is in its log.
local function count_move(key, record, old, new, now, now_iso)
  if old == new then return end
  -- A finished message's count lives in the bucket of the day it finished; anything else counts today.
  local finished_on = FINISHED[old] and tonumber(record.fday or written_before(key, 'fday')[1] or '')
  local day = finished_on or math.floor(now / DAY)
  if old then bump(count_key(old, day), old, -1) end
  if FINISHED[new] and not FINISHED[old] then
    day = math.floor(now / DAY)
    set_retention(key, day, new, record.logged)
    bump(count_key(new, day), new, 1)
    expiries[count_key(new, day)] = kept_until(day)
  else
    if FINISHED[old] and not FINISHED[new] then set_retention(key, false, new, record.logged) end
    bump(count_key(new, day), new, 1)
  end
  -- For /metrics: how many messages reached each status, by provider and sender (never decremented).
  bump('dispatch:metrics:statuses', new .. '\t' .. (record.provider or '') .. '\t' .. (record.sender or ''), 1)
  local batch = record.batch_id
  if not batch then return end
  local bkey = 'dispatch:batch:' .. batch
  if old then bump(bkey, 'count_' .. old, -1) end
  bump(bkey, 'count_' .. new, 1)
  if FINISHED[new] and not FINISHED[old] then
    if new == 'sent' or new == 'failed' then
      bump(bkey .. ':rate', math.floor(now), 1)
      lifetimes[bkey .. ':rate'] = 120
    end
    local finished = redis.call('HINCRBY', bkey, 'finished', 1)
    if finished >= batch_total(bkey) then
      redis.call('HSET', bkey, 'finished_at', now_iso)
      for _, k in ipairs({bkey, bkey .. ':messages'}) do redis.call('EXPIREAT', k, kept_until(day)) end
      local state = redis.call('HGET', bkey, 'state') or ''
      if BATCH_MOVES[state .. '>completed'] then redis.call('HSET', bkey, 'state', 'completed') end
      flush_deferred()  -- the completion event reports the batch's counts
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

-- The fields of a message that its counters need, read in one step (a call into Redis is what a script spends
-- most on), with its callback_url when the move finishes it (lib/outbox.lua reads the rest only if it has one).
local RECORD_FIELDS = {'batch_id', 'provider', 'sender', 'pool', 'fday', 'callback_url'}

local RECORD_FIELD = {}  -- name -> true, for `record_after`
for _, name in ipairs(RECORD_FIELDS) do RECORD_FIELD[name] = true end

local function read_record(key, finishing)
  local values, record = redis.call('HMGET', key, unpack(RECORD_FIELDS, 1, finishing and 6 or 5)), {}
  for i, name in ipairs(RECORD_FIELDS) do record[name] = values[i] end
  return record
end

-- The record's RECORD_FIELDS after a move that wrote `fields` ({name, value, ...}), from `known`, what the caller
-- read of them before it (name -> value): the read a move would make again, saved. A move that finishes the
-- message also writes its fday (the day it finished), which count_move reads only of a message already finished.
local function record_after(known, fields)
  local record = {}
  for _, name in ipairs(RECORD_FIELDS) do record[name] = known[name] end
  for i = 1, #(fields or {}), 2 do
    if RECORD_FIELD[fields[i]] then record[fields[i]] = fields[i + 1] end
  end
  return record
end

-- Move one message to `new`: its status (and `fields`, {name, value, ...}, written with it), a history entry,
-- the counters; `deadline` keeps the reconciler watching it (false: stop watching). `known`: what the caller
-- read of the message in this script, if it did, so that the move does not read it again: its RECORD_FIELDS
-- (see record_after) and its steps, reports and t0 (see history_fields); or nil.
local function move(key, id, old, new, now, now_iso, entry, deadline, fields, known)
  -- The table is the rule: a script asking for a move it does not allow is a bug, stopped here.
  if not MOVES[tostring(old) .. '>' .. new] then error('ILLEGAL_MOVE ' .. tostring(old) .. ' -> ' .. new) end
  local changes = history_fields(key, entry, known)
  changes[#changes + 1] = 'status'
  changes[#changes + 1] = new
  if changes[2] == '+' then  -- a history in the record says when it last moved (dispatcher/history.py: updated_at)
    changes[#changes + 1] = 'updated_at'
    changes[#changes + 1] = millis(now)  -- after the one history_fields may have written
  end
  for _, value in ipairs(fields or {}) do changes[#changes + 1] = value end
  if FINISHED[new] and not FINISHED[old] then
    changes[#changes + 1] = 'fday'
    changes[#changes + 1] = math.floor(now / DAY)
  end
  redis.call('HSET', key, unpack(changes))
  watch(id, deadline)
  local record = known and record_after(known, fields) or read_record(key, FINISHED[new])
  record.logged = changes[2] == '+'
  count_move(key, record, old, new, now, now_iso)
  -- dispatch:failed lists failed messages by when they failed, for operators (GET /v1/messages?status=failed).
  if new == 'failed' then
    redis.call('ZADD', 'dispatch:failed', now, id)
  elseif old == 'failed' then
    redis.call('ZREM', 'dispatch:failed', id)
  end
  report_status(key, id, record, new, now, now_iso)
end

-- The state of the message's batch, or false for a message sent on its own.
local function batch_state(key)
  local batch = redis.call('HGET', key, 'batch_id')
  if not batch then return false end
  return redis.call('HGET', 'dispatch:batch:' .. batch, 'state')
end

-- Claim one message for sending: queued/retrying → sending, with a lease; returns the attempt number. `known`: as
-- `move`'s.
local function claim(key, id, old, now, lease_until, now_iso, known)
  local attempt = redis.call('HINCRBY', key, 'attempts', 1)
  move(key, id, old, 'sending', now, now_iso, step('sending', now, attempt), lease_until,
       {'lease_until', lease_until}, known)
  return attempt
end

-- The daily send window is closed until `opens`: hold a waiting message as `scheduled` until then.
local function hold_for_window(key, id, status, opens, now, now_iso)
  redis.call('HSET', key, 'scheduled_for', opens)
  redis.call('ZADD', 'dispatch:scheduled', opens, id)
  move(key, id, status, 'scheduled', now, now_iso, cjson.encode({status = 'scheduled', at = now_iso,
       reason = 'send window'}), opens + 60)
end
