-- Six record fields took short names on 2026-12-07 (dispatcher/record_names.py). A record written before keeps
-- the long ones until it expires, but for those a move wrote since. Its creation wrote ext, to, fp and t0, so a
-- record missing one of those was written before; pmid and fday come later, under the short name whatever the
-- record. A reader asks for the short names, and only for a record written before asks again here.

-- The values of the record's fields `...` (short names), each under its short name if a move wrote it so, else
-- under its long one: a list, as HMGET's.
local function written_before(key, ...)
  -- Built here, not at the top: Redis runs a library's top level at every call of every script that has it.
  local LONG_NAME = {ext = 'external_id', to = 'recipient', fp = 'fingerprint', t0 = 'created_at',
                     pmid = 'provider_message_id', fday = 'finished_day'}
  local names, asked = {...}, {}
  for i, name in ipairs(names) do asked[i], asked[#names + i] = name, LONG_NAME[name] end
  local values, out = redis.call('HMGET', key, unpack(asked)), {}
  for i = 1, #names do out[i] = values[i] or values[#names + i] end
  return out
end
