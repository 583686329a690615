-- Cancel a batch: its state first (so no claim succeeds from now on), then every row still waiting.
-- Rows being sent finish. Returns {'ok', rows canceled} or {state that refused}.
-- KEYS: batch key, batch list key.  ARGV: now, now (ISO).
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' and state ~= 'paused' then return {state or 'missing'} end
redis.call('HSET', KEYS[1], 'state', 'canceled')
local now, now_iso = tonumber(ARGV[1]), ARGV[2]
local entry = cjson.encode({status = 'canceled', at = now_iso})
local canceled = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local key = 'dispatch:msg:' .. id
  local status = redis.call('HGET', key, 'status')
  if status == 'queued' or status == 'retrying' or status == 'scheduled' then
    move(key, id, status, 'canceled', now, now_iso, entry, false)
    canceled = canceled + 1
  end
end
return {'ok', canceled}
