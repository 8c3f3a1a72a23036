-- Put a round's in-flight list back at the inbox head, in order.
-- KEYS: in-flight list, inbox. Returns how many messages went back (-1, and nothing
-- moved, when either key is of another type).
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
