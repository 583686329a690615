-- The outcome of delivering a chain's first event, `head` (as it was read; nothing happens if the
-- chain changed since). ARGV[2]:
--   'delivered': take it off;
--   'retry': keep it, updated (ARGV[4]);
--   'dead': take it off into dispatch:cb:dead (ARGV[4] is its record; ARGV[6] its id), listed by time.
-- Returns how many events the chain still holds (-1: it changed). A chain that still holds events is
-- next due at ARGV[5] (a retry's time, or the lease of the task going on with it); an empty one
-- leaves dispatch:cb:due.
-- KEYS: chain key.  ARGV: chain, outcome, head, updated record, when, event id, now, oldest dead kept.
local chain, outcome, head = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LINDEX', KEYS[1], 0) ~= head then return -1 end
redis.call('HINCRBY', 'dispatch:metrics:callbacks', outcome, 1)
if outcome == 'retry' then
  redis.call('LSET', KEYS[1], 0, ARGV[4])
  redis.call('ZADD', 'dispatch:cb:due', ARGV[5], chain)
  return redis.call('LLEN', KEYS[1])
end
redis.call('LPOP', KEYS[1])
if outcome == 'dead' then
  redis.call('HSET', 'dispatch:cb:dead', ARGV[6], ARGV[4])
  redis.call('ZADD', 'dispatch:cb:dead:by-time', ARGV[7], ARGV[6])
  local account = cjson.decode(ARGV[4]).account
  if account then redis.call('ZADD', 'dispatch:cb:dead:by-time:' .. account, ARGV[7], ARGV[6]) end
  -- Dead deliveries are kept as long as messages are (ARGV[8]: the oldest time kept).
  local expired = redis.call('ZRANGEBYSCORE', 'dispatch:cb:dead:by-time', '-inf', ARGV[8], 'LIMIT', 0, 100)
  if #expired > 0 then forget_dead(expired, redis.call('HMGET', 'dispatch:cb:dead', unpack(expired))) end
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', 'dispatch:cb:due', chain)
else
  redis.call('ZADD', 'dispatch:cb:due', ARGV[5], chain)
end
return left
