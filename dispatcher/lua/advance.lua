-- Move messages to new statuses, each only if it is in one of its allowed ones. One call takes many moves (the
-- outcomes a batch chunk recorded since its last record), so that their counters are written once (see
-- lib/lifecycle.lua); a single outcome is a call with one move. Answers, per move: 'ok' (or 'ok:paused' when
-- this outcome paused its sender, see note_outcome), 'stale' (the outcome of a claim that is no longer the
-- message's: see the fence below), 'missing', or the status that refused the move (statuses only move forward).
-- A move to `sent` indexes the provider's message id (lib/day_index.lua) and applies the provider's reports
-- that came before it.
-- KEYS: the messages' keys, one per move.  ARGV: now, now (ISO), auto-pause window, auto-pause ratio, then for
-- each move: id, the id packed for the provider ids' index (a move to `sent`, else ''; lib/packed.lua), new
-- status, allowed-from (comma-separated), deadline ('' to stop watching), history step (dispatcher/history.py),
-- the attempt whose outcome this is ('' for a move no claim made), how long its provider call took ('' for
-- none), how many field/value pairs follow, the pairs.
local now, now_iso, window, ratio = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local LATENCY_BOUNDS = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
local latency_sums = {}  -- provider -> seconds its calls took, added to /metrics once at the end

-- For /metrics: how long a provider call took, as histogram buckets per provider.
local function observe_latency(provider, seconds)
  local le = '+Inf'
  for _, bound in ipairs(LATENCY_BOUNDS) do
    if seconds <= bound then
      le = tostring(bound)
      break
    end
  end
  bump('dispatch:metrics:latency', provider .. '\t' .. le, 1)
  latency_sums[provider] = (latency_sums[provider] or 0) + seconds
end

-- The move to `sent`: index the provider's id for its webhooks, apply the reports that came before it, note
-- whose the contact's reply is, and count it for its pool's member. `f`: the record's fields (see `advance`).
local function note_sent(key, id, packed_id, f, provider_id)
  if f[3] and provider_id and provider_id ~= '' then
    day_index_put('pmids:' .. f[3], provider_id, packed_id, now)  -- on the day it finished, as its retention
    apply_early_reports(key, id, f[3], provider_id, now, now_iso)
  end
  -- The contact's reply through this sender is now this account's (lib/contacts.lua).
  if f[3] and (f[6] or f[7]) then note_reach(f[8], sender_id(f[3], f[5]), f[6] or f[7], now) end
  if f[4] then
    -- Sent through a pool: count it for its member, and (sticky pools) remember who wrote to this recipient.
    local member = sender_id(f[3], f[5])
    bump('dispatch:pool:' .. f[4] .. ':sent', member, 1)
    if redis.call('HGET', 'dispatch:pool:' .. f[4], 'sticky') == '1' then
      redis.call('SET', 'dispatch:sticky:' .. (f[6] or f[7] or '') .. ':' .. f[4] .. ':' .. f[8], member,
                 'EX', POOL_STICKY)
    end
  end
end

-- The value of field `name` among the move's field/value pairs (ARGV from `first` to `last`), or nil.
local function field_of(name, first, last)
  for i = first, last, 2 do
    if ARGV[i] == name then return ARGV[i + 1] end
  end
end

-- One move (the arguments of one move in ARGV, from `at`); returns its answer and where the next move's start.
local function advance(key, at)
  local id, packed_id, new, allowed, deadline = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local entry, attempt, seconds, pairs_count = ARGV[at + 5], ARGV[at + 6], tonumber(ARGV[at + 7]),
                                               tonumber(ARGV[at + 8])
  local first, next_at = at + 9, at + 9 + 2 * pairs_count
  local f = redis.call('HMGET', key, 'status', 'attempts', 'provider', 'pool', 'sender', 'account', 'key_id',
                       'to', 'pmid', 'next_attempt_at', 'batch_id', 'fday', 'callback_url', 'steps',
                       'reports', 't0')
  if f[1] and not f[16] then f[8], f[9], f[16] = unpack(written_before(key, 'to', 'pmid', 't0')) end
  local status = f[1]
  if not status then return 'missing', next_at end
  if not string.find(',' .. allowed .. ',', ',' .. status .. ',', 1, true) then return status, next_at end
  -- The fence: a provider call outlived its lease and the message was claimed again since (a higher
  -- attempt). Its late outcome must not overwrite the claim that holds the message now.
  if status == 'sending' and attempt ~= '' and f[2] ~= attempt then return 'stale', next_at end
  -- A retry waits in the due index for its time (the workers publish it then), never in a worker.
  if new == 'retrying' then
    redis.call('ZADD', 'dispatch:due', field_of('next_attempt_at', first, next_at - 1) or f[10] or now, id)
  end
  local known = {batch_id = f[11], provider = f[3], sender = f[5], pool = f[4], fday = f[12],
                 callback_url = f[13], steps = f[14], reports = f[15], created_at = f[16]}
  move(key, id, status, new, now, now_iso, entry, deadline ~= '' and deadline, {unpack(ARGV, first, next_at - 1)},
       known)
  if new == 'sent' then
    note_sent(key, id, packed_id, f, field_of('pmid', first, next_at - 1) or f[9])
  end
  if status == 'sending' then
    if seconds then observe_latency(f[3] or '', seconds) end
    if f[3] and note_outcome(f[3], f[5], new ~= 'sent', window, ratio, now_iso) then return 'ok:paused', next_at end
  end
  return 'ok', next_at
end

local answers, at = {}, 5
for i, key in ipairs(KEYS) do
  answers[i], at = advance(key, at)
end
write_outcomes()
for provider, seconds in pairs(latency_sums) do
  redis.call('HINCRBYFLOAT', 'dispatch:metrics:latency', provider .. '\tsum', seconds)
end
return answers
