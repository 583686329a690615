-- Accept one message: the external_id mapping, the record and its task, all or nothing. A message
-- scheduled for later gets no task now: it waits in dispatch:scheduled until its time. Nothing expires
-- until the message finishes (see set_retention in common.lua).
-- KEYS: ext key, message key, queue key.
-- ARGV: id, deadline, status, due time ('' = now), task payload, field/value pairs...
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('ZADD', 'dispatch:pending', ARGV[2], ARGV[1])
redis.call('HINCRBY', 'dispatch:counts', ARGV[3], 1)
local route = redis.call('HMGET', KEYS[2], 'provider', 'sender')
redis.call('HINCRBY', 'dispatch:metrics:statuses', 'accepted\t' .. (route[1] or '') .. '\t' .. (route[2] or ''), 1)
if ARGV[4] ~= '' then
  redis.call('ZADD', 'dispatch:scheduled', ARGV[4], ARGV[1])
elseif ARGV[5] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[5])
end
return {1, ARGV[1]}
