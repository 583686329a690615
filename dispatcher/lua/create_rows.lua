-- Accept a slice of a batch's rows. Each row is created unless its external_id is taken; the
-- created ones join the batch's list and counts. Returns, per row, {1} or {0, existing id, its fingerprint}.
-- KEYS: batch key, batch list key.
-- ARGV: ttl, ext key prefix, status (queued, or scheduled), the rows as one JSON array of
--       [id, external_id, recipient, body, fingerprint] (one string packs far faster than five
--       arguments a row), then the shared field/value items.
local ttl, ext_prefix, status = ARGV[1], ARGV[2], ARGV[3]
local shared = {}
for i = 5, #ARGV do shared[#shared + 1] = ARGV[i] end
local out, created = {}, 0
for _, row in ipairs(cjson.decode(ARGV[4])) do
  local id, external_id = row[1], row[2]
  local ext = ext_prefix .. external_id
  if redis.call('SET', ext, id, 'NX', 'EX', ttl) then
    local key = 'dispatch:msg:' .. id
    redis.call('HSET', key, 'message_id', id, 'external_id', external_id, 'recipient', row[3],
               'body', row[4], 'fingerprint', row[5], 'status', status, 'attempts', 0, unpack(shared))
    redis.call('EXPIRE', key, ttl)
    redis.call('RPUSH', KEYS[2], id)
    created = created + 1
    out[#out + 1] = {1}
  else
    local existing = redis.call('GET', ext)
    out[#out + 1] = {0, existing, redis.call('HGET', 'dispatch:msg:' .. existing, 'fingerprint') or ''}
  end
end
if created > 0 then
  redis.call('HINCRBY', KEYS[1], 'total', created)
  redis.call('HINCRBY', KEYS[1], 'count_' .. status, created)
  redis.call('HINCRBY', 'dispatch:counts', status, created)
  local provider, sender = '', ''
  for i = 1, #shared, 2 do
    if shared[i] == 'provider' then provider = shared[i + 1] elseif shared[i] == 'sender' then sender = shared[i + 1] end
  end
  redis.call('HINCRBY', 'dispatch:metrics:statuses', 'accepted\t' .. provider .. '\t' .. sender, created)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return out
