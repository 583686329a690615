-- An index from a value to what it finds, kept by the UTC day: where a provider's message id finds our message
-- (dispatch:pmids:<provider>:..., its webhooks name theirs) and which account last sent to a number from a
-- sender (dispatch:sent-to:<sender id>:..., whose its reply is). Not a key an entry (about 190 bytes each) but
-- a hash a name, a day and a 4096th of the values: up to half a million entries a name a day, each hash stays
-- a compact listpack. The field is 16 hex digits of the value's SHA-1, packed into 8 bytes (lib/packed.lua; a
-- value longer than 64 bytes would turn its whole hash into a hashtable); the 3 before them name the hash.
-- What an entry finds is stored as its caller gives it: the provider ids' index holds packed message ids, about
-- 30 bytes an entry. A day's hashes expire with the messages of that day (lib/retention.lua).
-- Entries written before the fields were packed hold the digits as text: a lookup reads both fields (one HMGET)
-- until those days have expired, MESSAGE_RETENTION_DAYS after the upgrade.

-- The hash's name before and after its day, the field, and the field as it was written before it was packed, of
-- `value` in index `name`.
local function day_index_slot(name, value)
  local digest = redis.sha1hex(value)
  local digits = string.sub(digest, 4, 19)
  return 'dispatch:' .. name .. ':', ':' .. string.sub(digest, 1, 3), packed_digest(digits), digits
end

local index_expiring = {}  -- hash -> true once this script set its expiry

-- Index `value` → `found` in `name`, on the day of `now` (a later one overwrites an earlier one of that day).
local function day_index_put(name, value, found, now)
  local before, after, field = day_index_slot(name, value)
  local day = math.floor(now / DAY)
  local key = before .. day .. after
  redis.call('HSET', key, field, found)
  if not index_expiring[key] then
    index_expiring[key] = true
    redis.call('EXPIREAT', key, kept_until(day))
  end
end

-- What `value` finds in `name`, or false: the days whose hashes still exist at `now` are read, newest first
-- (a report or a reply comes soon after the send; a value found nowhere reads them all).
local function day_index_find(name, value, now)
  local before, after, field, text_field = day_index_slot(name, value)
  local today = math.floor(now / DAY)
  for day = today, today - math.ceil(RETENTION / DAY) - 1, -1 do
    local found = redis.call('HMGET', before .. day .. after, field, text_field)
    if found[1] or found[2] then return found[1] or found[2] end
  end
  return false
end

-- Our message id for `provider`'s message id `provider_id` at `now`, with the message's status and created_at
-- (read in the same call), or false. The message found must hold that id: two ids whose digests meet (one
-- chance in 2^64) find nothing rather than another message.
local function message_of_provider_id(provider, provider_id, now)
  -- Indexed before the day index, in a key of its own: read until those messages have expired.
  local packed = day_index_find('pmids:' .. provider, provider_id, now)
  local id = (packed and unpacked_message_id(packed))
    or redis.call('GET', 'dispatch:pmid:' .. provider .. ':' .. provider_id)
  if not id then return false end
  local key = 'dispatch:msg:' .. id
  local f = redis.call('HMGET', key, 'pmid', 'status', 't0')
  if f[2] and not f[3] then f[1], f[3] = unpack(written_before(key, 'pmid', 't0')) end
  if f[1] ~= provider_id then return false end
  return id, f[2], f[3]
end
