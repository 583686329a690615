-- Retention counts from when a message finishes, never from when it was accepted: a message that waits
-- (scheduled far ahead, held by a daily cap, a paused sender or batch) keeps its record, its history and
-- its external_id for as long as it waits, and every finished one is kept RETENTION seconds (from the
-- generated preamble: MESSAGE_RETENTION_DAYS) after the end of the UTC day it finished in. What is kept by
-- the day (counts, indexes) expires with the messages of its day.
local DAY = 86400

-- When what finished on UTC day `day` (days since 1970) expires.
local function kept_until(day)
  return (day + 1) * DAY + RETENTION
end
