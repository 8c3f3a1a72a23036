-- Take the supervisor's leader lock, or keep it when it is already ours (a leader
-- whose lock outlived a Redis outage or restart).
-- KEYS: lock. ARGV: owner, ttl in ms. Returns 1 if we hold it now, 0 if someone else
-- does, -1 if the key is not a string (a foreign key: nothing is changed).
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'string' and kind ~= 'none' then return -1 end
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
