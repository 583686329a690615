-- The callback outbox's writing side: the events every script may queue. Their public shapes are defined
-- once, in dispatcher/callback_events.py (published in /openapi.json), and every test delivery is checked
-- against them. Prepended by dispatcher/scripts.py to the scripts that name it there.

-- Status callbacks (the outbox). Each event waits in a chain, a list delivered in order by one task
-- at a time (tasks/callbacks.py): a message's own events in one chain, so the caller gets them in
-- the order the statuses moved. dispatch:cb:due holds each chain with events, scored by when it
-- should next be tried. An event is {url, attempts, account, event = the JSON body}: `account` (absent for
-- a reply nobody can attribute) picks the signing secret and who may see the delivery if it dies.

local function enqueue_event(chain, url, event, now, account)
  if not account then account = nil end  -- HMGET's false for a missing field: no key at all in the JSON
  local length = redis.call('RPUSH', 'dispatch:cb:chain:' .. chain, cjson.encode({url = url, attempts = 0,
                                                                                   account = account, event = event}))
  if length == 1 then redis.call('ZADD', 'dispatch:cb:due', now, chain) end
end

-- Dead deliveries `ids` (their records `records`, as read) leave the dead list, everyone's and their account's.
local function forget_dead(ids, records)
  redis.call('HDEL', 'dispatch:cb:dead', unpack(ids))
  redis.call('ZREM', 'dispatch:cb:dead:by-time', unpack(ids))
  for i, record in ipairs(records) do
    local account = record and cjson.decode(record).account
    if account then redis.call('ZREM', 'dispatch:cb:dead:by-time:' .. account, ids[i]) end
  end
end

-- A message moved to `new`: tell its callback_url (stored on the message at accept time, the
-- caller's own or STATUS_WEBHOOK_URL), if it has one. `record`: the message's batch_id, provider, sender, pool and
-- callback_url, as lib/lifecycle.lua's `move` read them. Event ids count the message's events, so a message that
-- fails, is retried and is sent gets distinct ids.
local function report_status(key, id, record, new, now, now_iso)
  if not FINISHED[new] or not record.callback_url then return end
  local f = redis.call('HMGET', key, 'ext', 'last_error', 'account', 'key_id')
  if not f[1] then f[1] = written_before(key, 'ext')[1] end
  local number = redis.call('HINCRBY', key, 'events', 1)
  local err = cjson.null
  if new == 'failed' and f[2] then
    local last = cjson.decode(f[2])
    err = {code = tostring(last.code or ''), message = last.message or ''}
  end
  enqueue_event(id, record.callback_url, {event_id = id .. '.' .. number, type = 'message.' .. new, message_id = id,
                                          external_id = f[1] or cjson.null, batch_id = record.batch_id or cjson.null,
                                          status = new, at = now_iso, error = err,
                                          provider = record.provider or cjson.null,
                                          sender = record.sender or cjson.null, pool = record.pool or cjson.null},
                now, f[3] or f[4])
end

-- A batch has no row left to finish: one batch.completed event to the batch's callback_url (once per
-- completion: a batch whose failed rows are retried completes again, with a new event id).
local function report_batch(batch, bkey, now_iso, now)
  local f = redis.call('HMGET', bkey, 'callback_url', 'state', 'total', 'count_sent', 'count_delivered',
                       'count_read', 'count_failed', 'count_canceled', 'account', 'key_id', 'count_expired')
  if not f[1] or redis.call('HSETNX', bkey, 'completed_reported', 1) == 0 then return end
  local completion = redis.call('HINCRBY', bkey, 'completions', 1)
  local counts = {sent = tonumber(f[4] or '0'), delivered = tonumber(f[5] or '0'), read = tonumber(f[6] or '0'),
                  failed = tonumber(f[7] or '0'), canceled = tonumber(f[8] or '0'), expired = tonumber(f[11] or '0')}
  enqueue_event('batch:' .. batch, f[1], {event_id = batch .. '.completed.' .. completion, type = 'batch.completed',
                                          batch_id = batch, state = f[2], total = tonumber(f[3]),
                                          counts = counts, at = now_iso}, now, f[9] or f[10])
end
