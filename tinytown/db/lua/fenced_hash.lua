-- A worker's write to its runtime hash, only while it holds the agent (its epoch is
-- current): tinytown.db.runtime.
-- KEYS: the agent's epoch key, its runtime hash.
-- ARGV: the worker's epoch, 'set' or 'del', then field/value pairs (set) or fields (del).
-- Returns 1 when written, 0 when the epoch is not the worker's (nothing written), -1
-- when the hash is of another type (nothing written).
if redis.pcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'hash' and kind ~= 'none' then return -1 end
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[2], unpack(ARGV, 3))
else
  redis.call('HDEL', KEYS[2], unpack(ARGV, 3))
end
return 1
