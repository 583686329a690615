-- Take the messages whose pacing slot (or schedule) has come, for the caller to publish.
-- KEYS: none.  ARGV: now, most to take.
local ids = redis.call('ZRANGEBYSCORE', 'dispatch:due', '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', 'dispatch:due', unpack(ids)) end
return ids
