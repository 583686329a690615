-- Move a message to a new status if it is in one of the allowed ones; returns 'ok' (or 'ok:paused'
-- when this outcome paused its sender, see note_outcome), 'stale' (the outcome of a claim that is no
-- longer the message's: see the fence below), or the status that refused the move (statuses only move
-- forward). A move to `sent` indexes the provider's message id (dispatch:pmid:...) and applies the
-- provider's reports that came before it.
-- KEYS: message key.  ARGV: id, new status, allowed-from (comma-separated), deadline ('' to stop
-- watching), history entry (JSON), now, now (ISO), auto-pause window, auto-pause ratio, the attempt
-- whose outcome this is ('' for a move no claim made), field/value pairs...
local key, id, new = KEYS[1], ARGV[1], ARGV[2]
local status = redis.call('HGET', key, 'status')
if not status then return 'missing' end
if not string.find(',' .. ARGV[3] .. ',', ',' .. status .. ',', 1, true) then return status end
-- The fence: a provider call outlived its lease and the message was claimed again since (a higher
-- attempt). Its late outcome must not overwrite the claim that holds the message now.
if status == 'sending' and ARGV[10] ~= '' and redis.call('HGET', key, 'attempts') ~= ARGV[10] then return 'stale' end
if #ARGV > 10 then redis.call('HSET', key, unpack(ARGV, 11)) end
-- A retry waits in the due index for its time (the workers publish it then), never in a worker.
if new == 'retrying' then redis.call('ZADD', 'dispatch:due', redis.call('HGET', key, 'next_attempt_at') or ARGV[6], id) end
local deadline = false
if ARGV[4] ~= '' then deadline = ARGV[4] end
move(key, id, status, new, tonumber(ARGV[6]), ARGV[7], ARGV[5], deadline)
if new == 'sent' then
  -- Provider webhooks name the message by the provider's id: index it for them.
  local f = redis.call('HMGET', key, 'provider', 'provider_message_id', 'pool', 'sender', 'account', 'key_id',
                       'recipient')
  if f[1] and f[2] and f[2] ~= '' then
    local ttl = redis.call('TTL', key)
    redis.call('SET', 'dispatch:pmid:' .. f[1] .. ':' .. f[2], id, 'EX', ttl > 0 and ttl or 86400)
    apply_early_reports(key, id, f[1], f[2], tonumber(ARGV[6]), ARGV[7])
  end
  -- The contact's reply through this sender is now this account's (lib/contacts.lua).
  if f[1] and (f[5] or f[6]) then note_reach(f[7], sender_id(f[1], f[4]), f[5] or f[6]) end
  if f[3] then
    -- Sent through a pool: count it for its member, and (sticky pools) remember who wrote to this recipient.
    local member = sender_id(f[1], f[4])
    redis.call('HINCRBY', 'dispatch:pool:' .. f[3] .. ':sent', member, 1)
    if redis.call('HGET', 'dispatch:pool:' .. f[3], 'sticky') == '1' then
      redis.call('SET', 'dispatch:sticky:' .. (f[5] or f[6] or '') .. ':' .. f[3] .. ':' .. f[7], member,
                 'EX', POOL_STICKY)
    end
  end
end
if status == 'sending' then
  local f = redis.call('HMGET', key, 'provider', 'sender', 'last_send_seconds')
  -- For /metrics: how long the provider call took, as histogram buckets per provider.
  local seconds = tonumber(f[3] or '')
  if seconds then
    redis.call('HDEL', key, 'last_send_seconds')  -- observed once
    local le = '+Inf'
    for _, bound in ipairs({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}) do
      if seconds <= bound then
        le = tostring(bound)
        break
      end
    end
    redis.call('HINCRBY', 'dispatch:metrics:latency', (f[1] or '') .. '\t' .. le, 1)
    redis.call('HINCRBYFLOAT', 'dispatch:metrics:latency', (f[1] or '') .. '\tsum', seconds)
  end
  if f[1] and note_outcome(f[1], f[2], new ~= 'sent', tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[7]) then
    return 'ok:paused'
  end
end
return 'ok'
