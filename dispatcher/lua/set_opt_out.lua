-- Put a number on the opt-out lists of some accounts, or take it off (POST / DELETE /v1/opt-outs, a provider's
-- preferences webhook), each with its history entry and, when that changed its state, a contact.opted_out (or
-- contact.opted_in) event (lib/contacts.lua). For a provider's word, the accounts are resolved here, as for a
-- reply. Returns the accounts whose list changed.
-- ARGV: phone, 'out' or 'in', the change (JSON: {source, at, ...}), now, callback URL ('' = no event), chain,
--       sender id ('' when the accounts are given), then the accounts (given, or every configured one for a
--       provider's word nobody can attribute).
local phone, out, now = ARGV[1], ARGV[2] == 'out', tonumber(ARGV[4])
local accounts = {}
for i = 8, #ARGV do accounts[#accounts + 1] = ARGV[i] end
if ARGV[7] ~= '' then accounts = reply_accounts(phone, ARGV[7], nil, accounts, now) end
local changed = {}
for _, account in ipairs(accounts) do
  if set_opt_out(account, phone, out, cjson.decode(ARGV[3]), now, ARGV[5], ARGV[6]) then
    changed[#changed + 1] = account
  end
end
return changed
