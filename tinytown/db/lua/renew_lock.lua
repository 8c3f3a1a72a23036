-- Renew the supervisor's leader lock only while we still hold it.
-- KEYS: lock. ARGV: owner, ttl in ms. Returns 1 if renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
