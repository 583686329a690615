-- A contact's reply: one message.received event, to the callback_url of the message it answers when
-- that is known, else to the default URL; the chain keeps one contact's replies in order. The reply opens the
-- contact's 24-hour window with the sender it wrote to, and a reply that is an opt-out (or opt-in) keyword
-- changes the opt-out list of each account it belongs to (lib/contacts.lua), with a contact.opted_out (or
-- contact.opted_in) event on the same chain.
-- Returns {outcome, id of the message it answers or '', the accounts whose list it changed...}: outcome
-- 'queued', 'duplicate', or 'nowhere' (no URL for the event).
-- KEYS: seen key (for duplicates).
-- ARGV: event (JSON), default URL, chain, now, how long to remember the reply (seconds), the contact (JSON:
--       {phone ('' when hidden), sender id, at, at_iso, action = opt_out|opt_in|'', keyword, provider, sender,
--       accounts = the configured accounts, for a reply nobody can attribute}), provider, the provider's id of
--       the message it answers ('' when none).
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[5]) then return {'duplicate', ''} end
local event, url, answered, account = cjson.decode(ARGV[1]), ARGV[2], '', nil
local now = tonumber(ARGV[4])
if ARGV[8] ~= '' then
  answered = message_of_provider_id(ARGV[7], ARGV[8], now) or ''
  if answered ~= '' then
    local key = 'dispatch:msg:' .. answered
    local f = redis.call('HMGET', key, 'callback_url', 'ext', 'batch_id', 'account', 'key_id')
    if not f[2] then f[2] = written_before(key, 'ext')[1] end
    event.in_reply_to = {message_id = answered, external_id = f[2] or cjson.null, batch_id = f[3] or cjson.null}
    if f[1] then url = f[1] end
    account = f[4] or f[5]
  end
end
local contact = cjson.decode(ARGV[6])
local out = {url == '' and 'nowhere' or 'queued', answered}
if contact.phone ~= '' then
  note_inbound(contact.phone, contact.sid, contact.at)
  if contact.action ~= '' then
    local change = {source = 'reply', at = contact.at_iso, keyword = contact.keyword, provider = contact.provider,
                    sender = contact.sender}
    for _, owner in ipairs(reply_accounts(contact.phone, contact.sid, account, contact.accounts, now)) do
      if set_opt_out(owner, contact.phone, contact.action == 'opt_out', change, now, url, ARGV[3]) then
        out[#out + 1] = owner
      end
    end
  end
end
if url ~= '' then enqueue_event(ARGV[3], url, event, now, account) end
return out
