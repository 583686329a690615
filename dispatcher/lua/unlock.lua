-- Release a lock only while it is still the caller's (compare and delete in one step: a lock that
-- expired and was taken by another task meanwhile stays theirs). With a pending member, the work it
-- guarded is forgotten in the same step: only the lock's holder may say that work is done.
-- Returns 1 if released, 0 if the lock was not the caller's.
-- KEYS: lock.  ARGV: token, member of dispatch:pending to forget ('' for none).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('ZREM', 'dispatch:pending', ARGV[2]) end
return 1
