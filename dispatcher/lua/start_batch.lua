-- Start a batch (after accepting it) or resume it (after a pause): one atomic change, so a fault
-- can never leave it `running` without its chunks, or its chunks without `running`. The batch must
-- be in one of the allowed states and hold exactly the rows the caller counted its chunks from.
-- Returns 'ok', {'total', rows it holds} (count again), or the state that refused ('missing' if none).
-- A batch whose every row was refused or replayed is not kept.
-- KEYS: batch key, queue key.
-- ARGV: allowed-from (comma-separated), rows counted, chunk deadline, scheduled for ('' = now),
--       chunk members..., then as many task payloads.
local state = redis.call('HGET', KEYS[1], 'state')
local accept = 'accept:' .. string.sub(KEYS[1], string.len('dispatch:batch:') + 1)
-- Only a batch still accepting needs its request (or the reconciler) to start it.
if state ~= 'accepting' then redis.call('ZREM', 'dispatch:pending', accept) end
if not state then return 'missing' end
if not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then return state end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if total ~= tonumber(ARGV[2]) then return {'total', total} end
redis.call('ZREM', 'dispatch:pending', accept)
local n = (#ARGV - 4) / 2
if n == 0 then
  redis.call('DEL', KEYS[1])
  return 'ok'
end
redis.call('HSET', KEYS[1], 'state', 'running')
for i = 5, 4 + n do
  redis.call('ZADD', 'dispatch:pending', ARGV[3], ARGV[i])
  if ARGV[4] ~= '' then redis.call('ZADD', 'dispatch:scheduled', ARGV[4], ARGV[i]) end
end
if ARGV[4] == '' then
  for first = 5 + n, 4 + 2 * n, 1000 do  -- unpack has a limit of a few thousand values
    redis.call('LPUSH', KEYS[2], unpack(ARGV, first, math.min(first + 999, 4 + 2 * n)))
  end
end
return 'ok'
