-- Message ids and digests as the indexes and lists that hold one a message keep them: as bytes, not as their
-- text. A message id is 40 characters of text and 16 bytes packed; a 16-digit digest, 8 bytes. Redis stores a
-- string of a compact list or hash as its bytes, so a batch's row list, the provider ids' index
-- (lib/day_index.lua) and whose a reply is (lib/contacts.lua) shrink by that much an entry, and only they: keys
-- and records keep the text, which is what a reader of Redis and every other script see. The Python side of
-- the same form is dispatcher/names.py (packed_message_id, unpacked_message_id).
-- An id that is not of our form (`msg-` and a lowercase UUID) stays text, and nothing else is 16 bytes long, so
-- an entry is unpacked only when it is 16 bytes: entries written before, as text, still read as they were.

local MESSAGE_ID = '^msg%-' .. string.rep('[0-9a-f]', 8) .. '%-' .. string.rep('[0-9a-f]', 4) .. '%-'
  .. string.rep('[0-9a-f]', 4) .. '%-' .. string.rep('[0-9a-f]', 4) .. '%-' .. string.rep('[0-9a-f]', 12) .. '$'
local SIXTEEN_BYTES = string.rep('%02x', 16)

-- The bytes of `hex`, lowercase hex digits of an even count.
local function packed_hex(hex)
  local bytes = {}
  for i = 1, #hex, 2 do bytes[#bytes + 1] = tonumber(string.sub(hex, i, i + 1), 16) end
  return string.char(unpack(bytes))
end

-- `id` packed into 16 bytes, or `id` itself when it is not one of our ids.
local function packed_message_id(id)
  if #id ~= 40 or not string.find(id, MESSAGE_ID) then return id end
  return packed_hex(string.sub(id, 5, 12) .. string.sub(id, 14, 17) .. string.sub(id, 19, 22)
    .. string.sub(id, 24, 27) .. string.sub(id, 29, 40))
end

-- The message id `stored` holds, packed or as text.
local function unpacked_message_id(stored)
  if #stored ~= 16 then return stored end
  local d = string.format(SIXTEEN_BYTES, string.byte(stored, 1, 16))
  return 'msg-' .. string.sub(d, 1, 8) .. '-' .. string.sub(d, 9, 12) .. '-' .. string.sub(d, 13, 16) .. '-'
    .. string.sub(d, 17, 20) .. '-' .. string.sub(d, 21, 32)
end
