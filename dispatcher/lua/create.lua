-- Accept one message: the external_id mapping, the record and its task, all or nothing.
-- KEYS: ext key, message key, queue key.  ARGV: id, ttl, deadline, now, task payload, field/value pairs...
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', 'dispatch:pending', ARGV[3], ARGV[1])
redis.call('HINCRBY', 'dispatch:counts', 'queued', 1)
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[5]) end
return {1, ARGV[1]}
