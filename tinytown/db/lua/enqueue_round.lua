-- Queue a round job unless one is pending (tinytown.db.wakeup.enqueue_round).
-- KEYS: wake flag, the kombu queue list. ARGV: the Celery message, the flag's ttl in
-- seconds, '1' to queue even when a job is pending. Returns 1 if queued, else 0 (-1:
-- the queue key is of another type).
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'list' and kind ~= 'none' then return -1 end  -- a foreign key: no wake flag
if ARGV[3] == '1' or redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
