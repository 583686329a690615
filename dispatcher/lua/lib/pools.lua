-- Sender pools (dispatcher/pools.py): a message sent through a pool is given a member at its claim, the one
-- that can send it soonest under its own pace, daily cap and warm-up. Needs lifecycle (for history entries),
-- senders and pacing (dispatcher/scripts.py puts them first).
--
-- A pool is dispatch:pool:<name> {members = JSON [{provider, sender, weight, id = its sender id}],
-- sticky = '1'|'0'}. The member a message is given is written on it (its provider and sender; a history entry
-- each time it moves), and while it waits for that member's slot it is listed in
-- dispatch:sender:<sender id>:reserved, so a member that falls (paused, auto-paused, disconnected) hands its
-- waiting messages back at once (fail_over.lua) and they are given another member. Messages that no member can
-- take wait in dispatch:pool:<name>:held until one can (release_pool.lua, when a member is resumed or added);
-- with every member capped for the day they wait for midnight instead.

-- What keeps a member from taking a message now: 'paused' (by hand, auto-pause, a disconnected instance), or
-- 'capped' (its daily cap, or warm-up cap, is used); else false and the time its next slot opens (it is not
-- reserved: `pace` does that for the member chosen). `tat` is its pace key's value (read for every member at
-- once, with one MGET), or nil to read it here.
local function member_state(provider, id, limits, now, tat)
  local own = sender_settings(id)
  if own[3] == 'paused' then return 'paused', 0 end
  local day = math.floor(now / 86400)
  local cap = tonumber(own[4] or '0')
  local warmup = tonumber(own[5] or '0')
  if warmup > 0 and own[7] then
    local ramp = math.floor(warmup * tonumber(own[6] or '1.5') ^ (day - tonumber(own[7])))
    if cap <= 0 or ramp < cap then cap = ramp end
  end
  if cap > 0 and tonumber(redis.call('GET', 'dispatch:sent-today:' .. id .. ':' .. day) or '0') >= cap then
    return 'capped', 0
  end
  local limit = limits[provider] or {rate = 0, burst = 1}
  local rate, burst = tonumber(own[1] or limit.rate), tonumber(own[2] or limit.burst)
  if tat == nil then tat = redis.call('GET', 'dispatch:pace:' .. id) end
  tat = math.max(tonumber(tat or '0'), now)
  if rate <= 0 then return false, tat end
  return false, math.max(tat - (math.max(1, burst) - 1) / rate, now)
end

-- The member for a message of pool `name`: the `sticky` one (a sender id: the member that last wrote to its
-- recipient) when it can send, else the one whose slot opens soonest; among members free at once, the one that
-- has had the fewest messages for its weight. Returns the member, or nil and whether some member is only capped
-- (then it waits for midnight rather than for a resume).
local function choose_member(name, members, sticky, limits, now)
  local counts = redis.call('HGETALL', 'dispatch:pool:' .. name .. ':picks')
  local picks = {}
  for i = 1, #counts, 2 do picks[counts[i]] = tonumber(counts[i + 1]) end
  local pace_keys = {}
  for i, member in ipairs(members) do pace_keys[i] = 'dispatch:pace:' .. member.id end
  local tats = redis.call('MGET', unpack(pace_keys))
  local best, best_at, best_share, capped = nil, 0, 0, false
  for i, member in ipairs(members) do
    local id = member.id
    local state, at = member_state(member.provider, id, limits, now, tats[i])
    if state == 'capped' then
      capped = true
    elseif not state then
      if sticky == id then return member end
      local share = (picks[id] or 0) / math.max(1, tonumber(member.weight) or 1)
      at = math.max(at, now)
      if not best or at < best_at or (at == best_at and share < best_share) then
        best, best_at, best_share = member, at, share
      end
    end
  end
  return best, capped
end

-- Give the message `id` (record `key`) of pool `name` its member and reserve that member's slot. Returns the wait
-- (as `pace` does: 0 send now, > 0 its slot is later, -1 held: no member can send), and the member's
-- provider and sender. `assigned` is the member it was given before ('' when none): it keeps it while that
-- member can send, so a reserved slot is used, and moves when it has fallen.
local function route_pool(key, id, name, provider, sender, limits, now, now_iso)
  local assigned = provider and provider ~= '' and sender_id(provider, sender or '') or ''
  local pool = redis.call('HMGET', 'dispatch:pool:' .. name, 'members', 'sticky')
  if not pool[1] then
    -- Its pool was deleted: a message already given a member keeps it, one not given any cannot be sent.
    if assigned == '' then return -2, provider, sender end
    return pace(key, id, provider, sender, limits, now), provider, sender
  end
  local members = cjson.decode(pool[1])
  local kept = false
  if assigned ~= '' then
    for _, member in ipairs(members) do
      if member.id == assigned then
        kept = member_state(member.provider, member.id, limits, now) ~= 'paused' and member
      end
    end
  end
  local member = kept
  if not member then
    local sticky = false
    if pool[2] == '1' then
      local f = redis.call('HMGET', key, 'account', 'key_id', 'to')
      if not f[3] then f[3] = written_before(key, 'to')[1] end
      sticky = redis.call('GET', 'dispatch:sticky:' .. (f[1] or f[2] or '') .. ':' .. name .. ':' .. f[3])
    end
    local capped
    member, capped = choose_member(name, members, sticky, limits, now)
    if assigned ~= '' then
      -- Its member fell while it waited: its reservation there is void.
      redis.call('HDEL', key, 'paced_until', 'capped_day')
      redis.call('ZREM', 'dispatch:sender:' .. assigned .. ':reserved', id)
    end
    if not member then
      if capped then
        local midnight = (math.floor(now / 86400) + 1) * 86400
        hold_until(key, id, midnight)
        return midnight - now, provider, sender
      end
      redis.call('SADD', 'dispatch:pool:' .. name .. ':held', id)
      watch(id, now + 3600)
      return -1, provider, sender
    end
    redis.call('HINCRBY', 'dispatch:pool:' .. name .. ':picks', member.id, 1)
    redis.call('HSET', key, 'provider', member.provider, 'sender', member.sender)
    if assigned ~= '' then
      -- A move, in the history (the first choice is on the record: its provider and sender).
      add_history(key, cjson.encode({status = redis.call('HGET', key, 'status'), at = now_iso, pool = name,
                                     member = member.provider .. '/' .. member.sender,
                                     detail = 'failover from ' .. provider .. '/' .. sender}))
    end
  end
  local wait = pace(key, id, member.provider, member.sender, limits, now)
  local reserved = 'dispatch:sender:' .. member.id .. ':reserved'
  if wait > 0 then
    redis.call('ZADD', reserved, now + wait, id)
    -- A slot over an hour gone whose message is still listed belongs to one canceled while it waited: a claim
    -- takes every other one off the list (and would route it anew anyway).
    redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now - 3600)
  elseif assigned ~= '' then
    redis.call('ZREM', reserved, id)  -- it waited there for this slot
  end
  return wait, member.provider, member.sender
end

-- The wait for a claimed message's sender (`pace`), choosing the member first when it goes through a pool.
-- -2: its pool no longer exists and it was given no member.
local function route_and_pace(key, id, provider, sender, pool, limits, now, now_iso)
  if not pool or pool == '' then return pace(key, id, provider, sender, limits, now), provider, sender end
  return route_pool(key, id, pool, provider, sender, limits, now, now_iso)
end

-- A message whose pool was deleted before it was given a member fails at its claim, saying so (an operator
-- can retry it once the pool exists again); it is claimed first, as any message that fails is while sending.
local function fail_unrouted(key, id, status, pool, now, lease_until, now_iso)
  claim(key, id, status, now, lease_until, now_iso)
  local err = {kind = 'configuration', code = 'unknown_pool', message = 'its pool ' .. pool .. ' no longer exists'}
  redis.call('HSET', key, 'last_error', cjson.encode(err))
  move(key, id, 'sending', 'failed', now, now_iso, cjson.encode({status = 'failed', at = now_iso, error = err}), false)
end
