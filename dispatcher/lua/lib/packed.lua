-- Message ids and digests as the indexes and lists that hold one a message keep them: as bytes, not as their
-- text. A message id is 40 characters of text and 16 bytes packed; a 16-digit digest, 8 bytes. Redis stores a
-- string of a compact list or hash as its bytes, so a batch's row list, the provider ids' index
-- (lib/day_index.lua) and whose a reply is (lib/contacts.lua) shrink by that much an entry, and only they: keys
-- and records keep the text, which is what a reader of Redis and every other script see.
-- Message ids are packed by the process that hands them over (dispatcher/names.py: a move to `sent`'s, a bulk
-- accept's rows), so that Redis, the part a deployment cannot add more of, does not pay for it: packing a row's
-- id here was a quarter of the Redis work of an accepted row. An id not exactly of our form (`msg-` and a
-- lowercase UUID) stays text, and nothing else is 16 bytes long, so an entry is unpacked only when it is 16
-- bytes, and entries written before, as text, read as they were.
-- Written for Redis's Lua, where a call into a C function costs more than arithmetic: tonumber takes eight hex
-- digits at a time (about 1.1 µs to pack a digest and 1.5 µs to unpack an id, where a digit pair at a time
-- took 3.9 and 4.4 µs: timed with EVAL in a loop).

-- The 4 bytes of `n` (0 <= n < 2^32), the most significant first.
local function bytes_of(n)
  local d = n % 256
  n = (n - d) / 256
  local c = n % 256
  n = (n - c) / 256
  local b = n % 256
  return (n - b) / 256, b, c, d
end

-- The 8 bytes of a digest's 16 lowercase hex digits.
local function packed_digest(hex)
  local a, b, c, d = bytes_of(tonumber(string.sub(hex, 1, 8), 16))
  return string.char(a, b, c, d, bytes_of(tonumber(string.sub(hex, 9, 16), 16)))
end

local MESSAGE_ID_FORM = 'msg-%08x-%04x-%04x-%04x-%04x%08x'

-- The message id `stored` holds, packed or as text.
local function unpacked_message_id(stored)
  if #stored ~= 16 then return stored end
  local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = string.byte(stored, 1, 16)
  return string.format(MESSAGE_ID_FORM, ((b1 * 256 + b2) * 256 + b3) * 256 + b4, b5 * 256 + b6, b7 * 256 + b8,
    b9 * 256 + b10, b11 * 256 + b12, ((b13 * 256 + b14) * 256 + b15) * 256 + b16)
end
