-- A round's start as one compare-and-set (tinytown.db.rounds.start).
-- KEYS: agent, task, events, the agent's epoch key. ARGV: agent as read, agent to
-- write, task as read ('' for none), task to write, events maxlen, the worker's epoch
-- ('' unfenced), the event's field/value pairs.
-- Writes only if both records are still as read: 1, else 0 (the caller then retries
-- under WATCH); -1 when the epoch is not the worker's (nothing written).
if ARGV[6] ~= '' and redis.pcall('GET', KEYS[4]) ~= ARGV[6] then return -1 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
  redis.call('SET', KEYS[2], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 7))
return 1
