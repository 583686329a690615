-- Cancel a batch: its state first (so no claim succeeds from now on), then the rows still waiting, up to
-- ARGV[4] of them from row ARGV[3] on (the caller goes on from the returned position: no call walks an
-- unbounded list). A batch already canceled goes on canceling its rows (a caller that died halfway calls
-- again). Rows being sent finish.
-- Returns {'ok', rows canceled, next row (-1: done)} or {state that refused}.
-- KEYS: batch key, batch list key.  ARGV: now, now (ISO), first row, most rows.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not BATCH_MOVES[state .. '>canceled'] then return {state or 'missing'} end
redis.call('HSET', KEYS[1], 'state', 'canceled')
local now, now_iso, first, most = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local entry = step('canceled', now)
local canceled = 0
local ids = redis.call('LRANGE', KEYS[2], first, first + most - 1)
for _, stored in ipairs(ids) do
  local id = unpacked_message_id(stored)
  local key = 'dispatch:msg:' .. id
  local status = redis.call('HGET', key, 'status')
  if WAITING[status] then
    redis.call('ZREM', 'dispatch:scheduled', id)
    redis.call('ZREM', 'dispatch:due', id)
    move(key, id, status, 'canceled', now, now_iso, entry, false)
    canceled = canceled + 1
  end
end
if #ids < most then return {'ok', canceled, -1} end
return {'ok', canceled, first + most}
