-- An account's new messages against its daily count: all of them are counted ({1}), or none ({0, the
-- count already used}). A negative count gives messages back (replays).
-- KEYS: the account's count for this UTC day. ARGV: messages, the daily limit, when the day's key expires.
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 and used + n > limit then return {0, used} end
redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
return {1}
