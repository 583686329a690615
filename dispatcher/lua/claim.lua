-- A task claims its message before calling the provider. Returns {'claimed', attempt, recipient,
-- body, external_id, provider, sender, media, template, pool}, or {why, 0}: busy (another holds the lease),
-- lease_expired (its holder died and take-over is off; with the attempt it held, to fence the failure
-- to it), paused or canceled (its batch), paced (held until its sender's slot), sender_paused (held
-- until its sender is resumed), pool_held (no member of its pool can send), failed (its pool is gone, or the
-- contact's 24-hour window closed with no fallback template), canceled (also: its recipient opted out), scheduled
-- or not_due (a retry: not due yet), missing, or the status it is already in (`expired` too when this claim found
-- it past its validity: see lib/validity.lua).
-- KEYS: message key.  ARGV: id, now, lease until, take over expired leases ('1'/'0'), now (ISO),
-- pacing limits (JSON), when the send window next opens (0: it is open).
local key, id, now, lease_until, now_iso = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
local status = redis.call('HGET', key, 'status')
if not status then return {'missing', 0} end
if status == 'sending' then
  if tonumber(redis.call('HGET', key, 'lease_until') or '0') > now then return {'busy', 0} end
  if ARGV[4] ~= '1' then return {'lease_expired', tonumber(redis.call('HGET', key, 'attempts'))} end
elseif not WAITING[status] then
  return {status, 0}
elseif expire_if_past(key, id, status, redis.call('HGET', key, 'expires_at'), now, now_iso) then
  return {'expired', 0}
elseif status == 'scheduled' then
  if tonumber(redis.call('HGET', key, 'scheduled_for') or '0') > now then return {'scheduled', 0} end
elseif status == 'retrying' then
  -- Republished before its time (a reconciler pass, a duplicate task): it waits in the due index.
  local next_at = tonumber(redis.call('HGET', key, 'next_attempt_at') or '0')
  if next_at > now then
    redis.call('ZADD', 'dispatch:due', next_at, id)
    return {'not_due', 0}
  end
end
local state = batch_state(key)
if state == 'paused' then return {'paused', 0} end
if state == 'canceled' then
  if status == 'sending' then
    -- Its worker died mid-send and the batch is canceled since: nothing more is sent, and whether
    -- that last attempt went out is unknown.
    redis.call('HSET', key, 'last_error', cjson.encode({kind = 'ambiguous', code = 'lease_expired',
                                                        message = 'worker died mid-send; batch canceled'}))
    move(key, id, status, 'failed', now, now_iso, step('failed', now), false)
  else
    move(key, id, status, 'canceled', now, now_iso, step('canceled', now), false)
  end
  return {'canceled', 0}
end
local opens = tonumber(ARGV[7])
if opens > now and status ~= 'sending' then
  hold_for_window(key, id, status, opens, now, now_iso)
  return {'scheduled', 0}
end
local f = redis.call('HMGET', key, 'to', 'ext', 'provider', 'sender', 'pool', 'account', 'key_id', 'opt_out_reply')
if not f[2] then f[1], f[2] = unpack(written_before(key, 'to', 'ext')) end
if status ~= 'sending' and cancel_if_opted_out(key, id, status, {f[6], f[7], f[1], f[8]}, now, now_iso) then
  return {'canceled', 0}
end
local limits = cjson.decode(ARGV[6])
local wait, provider, sender = route_and_pace(key, id, f[3], f[4], f[5], limits, now, now_iso)
if wait == -2 then
  fail_unrouted(key, id, status, f[5], now, lease_until, now_iso)
  return {'failed', 0}
end
if wait < 0 then return {f[5] and 'pool_held' or 'sender_paused', 0} end
if wait > 0 then return {'paced', 0} end
local content = content_of(key)
local template, closed = session_template(key, f[1], provider, sender, content, limits, now)
if closed then
  fail_outside_window(key, id, status, now, lease_until, now_iso)
  return {'failed', 0}
end
local attempt = claim(key, id, status, now, lease_until, now_iso)
return {'claimed', attempt, f[1], content.body, f[2], provider, sender, content.media or false,
        template or false, f[5]}
