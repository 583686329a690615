-- What a message says, in its own key beside its record (dispatcher/redis_keys.py CONTENT): a JSON object with
-- `body` and, when the message has them, `media`, `template` and `fallback_template`, each the JSON text the API
-- stored (kept as text, so that no number in a template is re-encoded on the way). Kept apart so that the record
-- keeps Redis's compact encoding, and so that it can go when the message finishes (lib/lifecycle.lua): only a
-- send reads it. Prepended by dispatcher/scripts.py to the scripts that name it there.

-- The content key of message `key`, from its text and `extras` (the route's members, as the store encodes them:
-- '' or `,"media":"..."`...), spliced so that nothing but the body is encoded here.
local function write_content(key, body, extras)
  redis.call('SET', key .. ':content', '{"body":' .. cjson.encode(body) .. extras .. '}')
end

-- The content of message `key`, to send it, as a table. A message that may still be sent has one (lifecycle drops
-- it only when the message can no longer go); a record accepted before the content had its own key holds it in
-- its own fields.
local function content_of(key)
  local raw = redis.call('GET', key .. ':content')
  if raw then return cjson.decode(raw) end
  local f = redis.call('HMGET', key, 'body', 'media', 'template', 'fallback_template')
  if not f[1] then error('NO_CONTENT ' .. key .. ' has nothing to send') end
  return {body = f[1], media = f[2] or nil, template = f[3] or nil, fallback_template = f[4] or nil}
end
