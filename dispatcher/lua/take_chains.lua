-- Take the callback chains whose time has come, each leased for a while: its task has that long to
-- deliver or reschedule it before a later pass publishes it again (a lost task costs one lease).
-- KEYS: none.  ARGV: now, most to take, lease (seconds).
local chains = redis.call('ZRANGEBYSCORE', 'dispatch:cb:due', '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local again = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, chain in ipairs(chains) do redis.call('ZADD', 'dispatch:cb:due', again, chain) end
return chains
