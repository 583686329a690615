-- One request of an account, against its request rate: a GCRA bucket (one key, the theoretical arrival
-- time of the next request), shared by every web process. Returns 0 (admitted) or, as a string, the
-- seconds to wait before a request would be admitted.
-- KEYS: the account's bucket. ARGV: now, seconds per request (1 / rate), the bucket's size (burst).
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tolerance = interval * burst
local next_at = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + interval
if next_at - now > tolerance then return tostring(next_at - now - tolerance) end
redis.call('SET', KEYS[1], tostring(next_at), 'PX', math.ceil(tolerance * 1000) + 1000)
return 0
