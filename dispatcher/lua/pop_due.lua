-- Take what is due, for the caller to publish: messages whose pacing slot has come (dispatch:due),
-- and messages and batch chunks whose scheduled time has come (dispatch:scheduled).
-- KEYS: none.  ARGV: now, most to take from each.
local out = {}
for _, key in ipairs({'dispatch:due', 'dispatch:scheduled'}) do
  local members = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
  if #members > 0 then redis.call('ZREM', key, unpack(members)) end
  for _, member in ipairs(members) do out[#out + 1] = member end
end
return out
