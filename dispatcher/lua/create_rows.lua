-- Accept a slice of a batch's rows. Each row is created unless its external_id names a message already; the
-- created ones join the batch's list and counts; a new row the contact's rules refuse (lib/contacts.lua) is not
-- created. Returns, per row, {1}, {0, existing id, its fingerprint, its batch ('' for a single send)} or {-1,
-- the rule's code}.
-- The first slice that creates a row also creates the batch (state `accepting`) and puts
-- `accept:<batch>` in dispatch:pending, so that if the request dies before it starts the batch (a killed web
-- process, a reply lost after Redis did the work), the reconciler starts it past that deadline. A
-- slice for a batch that is no longer accepting (the reconciler started it meanwhile) is refused
-- whole, so no row joins a batch after its chunks were counted.
-- Nothing expires until it finishes (see set_retention in lib/lifecycle.lua). Rows of a batch with a validity
-- (a shared `expires_at`) wait in dispatch:expiring too (see lib/validity.lua).
-- KEYS: batch key, batch list key.
-- ARGV: the prefix of earlier messages' external_id keys, status (queued, or scheduled), the rows as one JSON
--       array of [id, external_id, recipient, body, fingerprint] (one string packs far faster than five
--       arguments a row), the batch's own fields (JSON object), accept deadline, batch id, the contact's
--       rules (JSON, dispatcher/contacts.py Contacts.rules; '' = none), the content members every row shares
--       (see write_content in lib/content.lua), the rows' ids packed as the batch's list keeps them, 16 bytes
--       each, end to end (dispatcher/names.py packed_row_ids), then the shared field/value items.
local ext_prefix, status, packed_ids = ARGV[1], ARGV[2], ARGV[9]
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'accepting' then return redis.error_reply('BATCH_STARTED batch is ' .. state) end
local shared = {}
for i = 10, #ARGV do shared[#shared + 1] = ARGV[i] end
local expires_at = false
for i = 1, #shared, 2 do
  if shared[i] == 'expires_at' then expires_at = shared[i + 1] end
end
local rules = ARGV[7] ~= '' and cjson.decode(ARGV[7])
local rows = cjson.decode(ARGV[3])
-- The rules' reads for the whole slice at once (a few calls, not a few a row); each new row is counted below.
local refusals = {}
if rules then
  local phones = {}
  for i, row in ipairs(rows) do phones[i] = row[3] end
  refusals = contact_refusals(rules.account, phones, rules)
end
local out, created, listed = {}, 0, {}
for i, row in ipairs(rows) do
  local id, external_id = row[1], row[2]
  local key = 'dispatch:msg:' .. id
  -- A replay finds the record its id names (as in create.lua, or an earlier message's external_id key).
  local existing = redis.call('GET', ext_prefix .. external_id)
                   or (redis.call('EXISTS', key) == 1 and id)
  if existing then
    local f = redis.call('HMGET', 'dispatch:msg:' .. existing, 'fp', 'batch_id')
    if not f[1] then f[1] = written_before('dispatch:msg:' .. existing, 'fp')[1] end
    out[#out + 1] = {0, existing, f[1] or '', f[2] or ''}
  else
    local refused = rules and (refusals[i] or count_contact(rules.account, row[3], rules))
    if refused then
      out[#out + 1] = {-1, refused}
    else
      redis.call('HSET', key, 'ext', external_id, 'to', row[3], 'fp', row[5], 'status', status, 'attempts', 0,
                 unpack(shared))
      write_content(key, row[4], ARGV[8])
      listed[#listed + 1] = string.sub(packed_ids, 16 * i - 15, 16 * i)  -- 16 bytes, not 40 (lib/packed.lua)
      if expires_at then redis.call('ZADD', 'dispatch:expiring', expires_at, id) end
      created = created + 1
      out[#out + 1] = {1}
    end
  end
end
if created > 0 then
  redis.call('RPUSH', KEYS[2], unpack(listed))  -- in the rows' order, in one call
  if not state then
    local header = {}
    for name, value in pairs(cjson.decode(ARGV[4])) do
      header[#header + 1] = name
      header[#header + 1] = value
    end
    redis.call('HSET', KEYS[1], 'state', 'accepting', 'total', 0, 'finished', 0, unpack(header))
    redis.call('ZADD', 'dispatch:pending', ARGV[5], 'accept:' .. ARGV[6])
    redis.call('ZADD', 'dispatch:batches', ARGV[5], ARGV[6])  -- the console's list, newest last
  end
  redis.call('HINCRBY', KEYS[1], 'total', created)
  redis.call('HINCRBY', KEYS[1], 'count_' .. status, created)
  redis.call('HINCRBY', 'dispatch:counts', status, created)
  local provider, sender = '', ''
  for i = 1, #shared, 2 do
    if shared[i] == 'provider' then provider = shared[i + 1] elseif shared[i] == 'sender' then sender = shared[i + 1] end
  end
  redis.call('HINCRBY', 'dispatch:metrics:statuses', 'accepted\t' .. provider .. '\t' .. sender, created)
end
return out
