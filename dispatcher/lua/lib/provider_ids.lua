-- Where a provider's message id finds our message (its webhooks name theirs): dispatcher/redis_keys.py
-- PROVIDER_IDS. Not a key a message (about 190 bytes each) but one hash a provider, a UTC day (the day the
-- message was sent, which its retention counts from) and a 4096th of the ids: up to half a million sends a
-- day, each hash stays a compact listpack, about 60 bytes an id. The field is 16 hex digits of the id's SHA-1
-- (an id longer than 64 bytes would turn its whole hash into a hashtable); the next 3 name the hash.

-- The index hash's name before and after its day, and the field, of `provider`'s id `provider_id`.
local function provider_id_slot(provider, provider_id)
  local digest = redis.sha1hex(provider_id)
  return 'dispatch:pmids:' .. provider .. ':', ':' .. string.sub(digest, 1, 3), string.sub(digest, 4, 19)
end

-- Our message id for `provider`'s `provider_id`, or false: the days whose hashes still exist at `now` are read,
-- newest first (a report comes soon after the send; one for an id that is not ours reads them all).
local function find_provider_id(provider, provider_id, now)
  local before, after, field = provider_id_slot(provider, provider_id)
  local today = math.floor(now / 86400)
  for day = today, today - math.ceil(RETENTION / 86400) - 1, -1 do
    local id = redis.call('HGET', before .. day .. after, field)
    if id then return id end
  end
  -- Indexed before these hashes, in a key of its own: read until those messages have expired.
  return redis.call('GET', 'dispatch:pmid:' .. provider .. ':' .. provider_id)
end
