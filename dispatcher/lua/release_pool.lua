-- A pool may send again (a member was resumed or added): up to ARGV[2] of the messages it held go to the due
-- index now, and their claim gives them a member (the caller calls again while some are left).
-- KEYS: the pool's held set (dispatch:pool:<name>:held).  ARGV: now, most to release.
-- Returns {released, still held}.
local held = redis.call('SPOP', KEYS[1], ARGV[2])
for _, id in ipairs(held) do
  redis.call('ZADD', 'dispatch:due', ARGV[1], id)
end
return {#held, redis.call('SCARD', KEYS[1])}
