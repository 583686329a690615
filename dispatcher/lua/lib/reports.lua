-- A provider's status reports: applied to their message (report.lua), or parked until the move to `sent`
-- applies them (advance.lua). Needs lifecycle (dispatcher/scripts.py puts it first).

-- A provider's report of `new` for message `id`: drop a report seen before, move the status forward
-- only (from one of `allowed`, comma-separated), keep it in the history (marked ignored when the
-- message is already past it), set `fields` ({name, value, ...}). `status`: the message's, when the caller has
-- just read it (else read here); `older`: the record was written before reports seen were digests. Returns 'ok',
-- 'duplicate', 'same' or 'stale'.
local function apply_report(key, id, new, allowed, report_key, entry, now, now_iso, fields, status, older)
  -- A report seen is a field of 16 hex digits of its key's SHA-1: a provider's key (its message id and status
  -- word) can pass 64 bytes, which would turn the whole record into a hashtable of three times the size.
  if redis.call('HSETNX', key, 'r:' .. string.sub(redis.sha1hex(report_key), 1, 16), 1) == 0 then
    return 'duplicate'
  end
  -- Seen before that, under its whole key: read until those messages have expired.
  if older and redis.call('HEXISTS', key, 'report:' .. report_key) == 1 then return 'duplicate' end
  status = status or redis.call('HGET', key, 'status')
  if status == new then return 'same' end
  if not string.find(',' .. allowed .. ',', ',' .. status .. ',', 1, true) then
    if string.byte(entry, 1) == 123 then  -- JSON (dispatcher/history.py)
      local ignored = cjson.decode(entry)
      ignored.ignored = 'message already ' .. status
      add_history(key, cjson.encode(ignored))
    else
      add_history(key, entry .. '?' .. status)
    end
    return 'stale'
  end
  move(key, id, status, new, now, now_iso, entry, false, fields)
  return 'ok'
end

-- Reports that came before we recorded `sent` (the provider answered our webhook before our own call
-- returned, or a chunk was still sending the rest of its group) wait in dispatch:early:<provider>:<its
-- id> (report.lua parks them); the move to `sent` applies them here, in the order they came.
local function apply_early_reports(key, id, provider, provider_id, now, now_iso)
  local early = 'dispatch:early:' .. provider .. ':' .. provider_id
  local parked = redis.call('LRANGE', early, 0, -1)
  if #parked == 0 then return end
  redis.call('DEL', early)
  for _, raw in ipairs(parked) do
    local report = cjson.decode(raw)
    local outcome = apply_report(key, id, report.status, report.allowed, report.report, report.entry, now, now_iso,
                                 report.fields)
    redis.call('HINCRBY', 'dispatch:metrics:reports', provider .. '\t' .. outcome, 1)
  end
end
