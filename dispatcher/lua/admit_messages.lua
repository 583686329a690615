-- An account's new messages of a bulk request against its day (over_daily_count in lib/quotas.lua): {1}
-- when all are counted, {0, the count already used} when none is. A negative count gives messages back.
-- KEYS: the account's count for this UTC day. ARGV: messages, the daily limit, when the day's key expires.
local used = over_daily_count(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if used then return {0, used} end
return {1}
