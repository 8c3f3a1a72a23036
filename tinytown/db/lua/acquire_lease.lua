-- A worker start takes an agent over (tinytown.db.runtime.acquire).
-- KEYS: the agent's epoch key, its runtime hash.
-- ARGV: the epoch as the caller read it ('' for none), then the runtime hash's
-- field/value pairs for the new holder.
-- Only if the epoch is still as read (nobody took the agent over meanwhile): the
-- epoch goes up by one and the hash describes the new holder alone. Returns the new
-- epoch; 0 when the epoch changed meanwhile (read again, decide again); -1 when the
-- epoch key, -2 when the hash, is of another type or not a number (changes nothing).
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' then return -1 end
if cur and not tonumber(cur) then return -1 end
if (cur or '') ~= ARGV[1] then return 0 end
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'hash' and kind ~= 'none' then return -2 end
local epoch = redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'epoch', epoch, unpack(ARGV, 2))
return epoch
