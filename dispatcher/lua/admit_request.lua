-- One request of an account, against its request rate (over_rate in lib/quotas.lua), for every route but a
-- single send, whose create script checks it in the same step. Returns 0 (admitted) or, as a string, the
-- seconds to wait. KEYS: the account's bucket. ARGV: now, seconds per request (1 / rate), the bucket's size.
local wait = over_rate(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if wait then return tostring(wait) end
return 0
