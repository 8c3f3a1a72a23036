-- Put a round's in-flight list back at the inbox head, in order.
-- KEYS: in-flight list, inbox, and for a worker the agent's epoch key. ARGV: the
-- worker's epoch (with the third key). Returns how many messages went back (-1, and
-- nothing moved, when either key is of another type; -2 when the epoch is not the
-- worker's).
if #KEYS > 2 and redis.pcall('GET', KEYS[3]) ~= ARGV[1] then return -2 end
for i = 1, 2 do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= 'list' and kind ~= 'none' then return -1 end
end
local n = 0
while true do
  local m = redis.call('RPOP', KEYS[1])
  if not m then break end
  redis.call('LPUSH', KEYS[2], m)
  n = n + 1
end
return n
