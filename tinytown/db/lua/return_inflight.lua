-- Put a round's in-flight list back at the inbox head, in order.
-- KEYS: in-flight list, inbox. Returns how many messages went back.
local n = 0
while true do
  local m = redis.call('RPOP', KEYS[1])
  if not m then break end
  redis.call('LPUSH', KEYS[2], m)
  n = n + 1
end
return n
