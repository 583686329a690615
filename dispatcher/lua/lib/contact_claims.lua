-- A contact's rules at the claim (dispatcher/contacts.py): time passes while a message waits, so what was true when
-- it was accepted is checked again before it goes. Needs lifecycle, senders and contacts (dispatcher/scripts.py
-- puts them first).

-- At the claim: a waiting message whose recipient has opted out of its account since it was accepted is
-- canceled (reason opted_out), never sent. A confirmation of the opt-out itself (OPT_OUT_REPLY) goes.
-- `contact`: the message's account, key_id, recipient and opt_out_reply fields, as the claim read them. Returns
-- true when it canceled the message.
local function cancel_if_opted_out(key, id, status, contact, now, now_iso)
  local account = contact[1] or contact[2]
  if contact[4] or not account or not opted_out(account, contact[3]) then return false end
  redis.call('ZREM', 'dispatch:scheduled', id)
  redis.call('ZREM', 'dispatch:due', id)
  move(key, id, status, 'canceled', now, now_iso, cjson.encode({status = 'canceled', at = now_iso,
       reason = 'opted_out'}), false)
  return true
end

-- At the claim, for a provider that enforces the 24-hour window (`limits[provider].window`): a free-form message
-- to a contact whose window with the chosen sender has closed goes as its fallback template (its own, else
-- its sender's), or not at all. `content` is the message's (lib/content.lua). Returns the template to send (JSON,
-- or nil: the text) and, when the message cannot go, the code of its failure.
local function session_template(key, recipient, provider, sender, content, limits, now)
  local template = content.template
  if template or not (limits[provider] or {}).window then return template, nil end
  local sid = sender_id(provider, sender)
  if windows_open({recipient}, sid, now)[1] then return nil, nil end
  local fallback = content.fallback_template or redis.call('HGET', 'dispatch:sender:' .. sid, 'fallback_template')
  if not fallback then return nil, 'outside_session_window' end
  redis.call('HSET', key, 'fallback_used', 1)
  return fallback, nil
end

-- A message session_template found outside its window, with no fallback: failed without calling the provider
-- (claimed first, so that its history says so and the move is one the lifecycle allows).
local function fail_outside_window(key, id, status, now, lease_until, now_iso)
  claim(key, id, status, now, lease_until, now_iso)
  local err = {kind = 'permanent', code = 'outside_session_window',
               message = "the contact's 24-hour window is closed and the message has no fallback template"}
  redis.call('HSET', key, 'last_error', cjson.encode(err))
  move(key, id, 'sending', 'failed', now, now_iso, cjson.encode({status = 'failed', at = now_iso, error = err}), false)
end

