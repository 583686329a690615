-- A contact's reply: one message.received event, to the callback_url of the message it answers when
-- that is known, else to the default URL; the chain keeps one contact's replies in order.
-- Returns {outcome, id of the message it answers or ''}: 'queued', 'duplicate', or 'nowhere' (no URL).
-- KEYS: seen key (for duplicates), provider-id index key of the answered message ('' when none).
-- ARGV: event (JSON), default URL, chain, now, how long to remember the reply (seconds).
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[5]) then return {'duplicate', ''} end
local event, url, answered, account = cjson.decode(ARGV[1]), ARGV[2], '', nil
if KEYS[2] ~= '' then
  answered = redis.call('GET', KEYS[2]) or ''
  if answered ~= '' then
    local f = redis.call('HMGET', 'dispatch:msg:' .. answered, 'callback_url', 'external_id', 'batch_id', 'account',
                         'key_id')
    event.in_reply_to = {message_id = answered, external_id = f[2] or cjson.null, batch_id = f[3] or cjson.null}
    if f[1] then url = f[1] end
    account = f[4] or f[5]
  end
end
if url == '' then return {'nowhere', answered} end
enqueue_event(ARGV[3], url, event, tonumber(ARGV[4]), account)
return {'queued', answered}
