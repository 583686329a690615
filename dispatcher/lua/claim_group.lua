-- A batch chunk claims its next rows together. Rows that are not waiting (sent, being sent, or
-- retrying later on their own task) are skipped; waiting rows past their validity expire (see lib/validity.lua).
-- Returns {state} when the batch is not running,
-- else {'running', {id, attempt, recipient, body, external_id, provider, sender, media, template, pool}...}.
-- Rows whose sender has no slot now are held until their slot (see pace in lib/pacing.lua; a pool's rows
-- are given their member first, see lib/pools.lua) and go on their own from there; outside the send window they are held until it opens.
-- Rows whose recipient opted out are canceled, and free-form rows outside the contact's 24-hour window go as their
-- fallback template or fail (lib/contacts.lua).
-- KEYS: batch key.  ARGV: now, lease until, now (ISO), pacing limits (JSON), window opening (0: open), ids...
local now, lease_until, now_iso, limits = tonumber(ARGV[1]), ARGV[2], ARGV[3], cjson.decode(ARGV[4])
local opens = tonumber(ARGV[5])
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' then return {state or 'missing'} end
local out = {'running'}
local batch_id = string.sub(KEYS[1], #'dispatch:batch:' + 1)  -- every row's: they come from its row list
for i = 6, #ARGV do
  local id = ARGV[i]
  local key = 'dispatch:msg:' .. id
  local f = redis.call('HMGET', key, 'status', 'next_attempt_at', 'to', 'ext', 'provider', 'sender',
                      'scheduled_for', 'pool', 'expires_at', 'account', 'key_id', 'opt_out_reply', 'steps',
                      'reports', 't0')
  if f[1] and not f[15] then f[3], f[4], f[15] = unpack(written_before(key, 'to', 'ext', 't0')) end
  local expired = WAITING[f[1]] and expire_if_past(key, id, f[1], f[9], now, now_iso)
  -- Waiting, and due: a retry's or a schedule's time has come.
  local waiting = not expired and WAITING[f[1]] and not (f[1] == 'retrying' and tonumber(f[2] or '0') > now)
                  and not (f[1] == 'scheduled' and tonumber(f[7] or '0') > now)
  if waiting and opens > now then
    hold_for_window(key, id, f[1], opens, now, now_iso)
  elseif waiting and not cancel_if_opted_out(key, id, f[1], {f[10], f[11], f[3], f[12]}, now, now_iso) then
    local wait, provider, sender = route_and_pace(key, id, f[5], f[6], f[8], limits, now, now_iso)
    local content, template, closed
    if wait == 0 then
      content = content_of(key)
      template, closed = session_template(key, f[3], provider, sender, content, limits, now)
    end
    if wait == -2 then
      fail_unrouted(key, id, f[1], f[8], now, lease_until, now_iso)
    elseif closed then
      fail_outside_window(key, id, f[1], now, lease_until, now_iso)
    elseif wait == 0 then
      -- What the claim's counters need, as read above; a pool's row may have just been given its member.
      local known = (f[8] or '') == '' and {batch_id = batch_id, provider = f[5], sender = f[6], pool = f[8],
                                            steps = f[13], reports = f[14], created_at = f[15]} or nil
      local attempt = claim(key, id, f[1], now, lease_until, now_iso, known)
      out[#out + 1] = {id, attempt, f[3], content.body, f[4], provider, sender,
                         content.media or false, template or false, f[8]}
    end
  end
end
return out
