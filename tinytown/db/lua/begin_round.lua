-- A round's first step (tinytown.db.rounds.begin), one call.
-- KEYS: wake flag, stop flag, agent, inbox, in-flight list, the agent's epoch key, the
-- town's budget key, the town's token budget key.
-- ARGV: max batch, the task key prefix, the worker's epoch ('' unfenced), then the
-- message types that need the agent CLI (models.NEEDS_CLI).
-- Returns {'fenced'} (the epoch is not the worker's: nothing changed), {'stop'},
-- {'badkey', key}, {'gone'}, {'wait', agent} or {'take', agent, task, budget,
-- token budget, message...}: the inbox head up to and including the first message
-- that needs the agent CLI, the task a `task_assign` names (false if none or not
-- found), and the town's budgets set with `tt budget set town` (false if none).
if ARGV[3] ~= '' and redis.pcall('GET', KEYS[6]) ~= ARGV[3] then return {'fenced'} end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return {'stop'} end
-- a key of another type would fail halfway, after the inbox was popped: change nothing
for i = 4, 5 do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= 'list' and kind ~= 'none' then return {'badkey', KEYS[i]} end
end
local raw = redis.pcall('GET', KEYS[3])
if type(raw) ~= 'string' then return {'gone'} end
local ok, doc = pcall(cjson.decode, raw)
local state = ok and type(doc) == 'table' and doc['state'] or nil
if state ~= 'idle' and state ~= 'starting' then return {'wait', raw} end
local needs_cli = {}
for i = 4, #ARGV do needs_cli[ARGV[i]] = true end
local budget = redis.pcall('GET', KEYS[7])
if type(budget) ~= 'string' then budget = false end
local tokens = redis.pcall('GET', KEYS[8])
if type(tokens) ~= 'string' then tokens = false end
local out = {'take', raw, false, budget, tokens}
for i = 1, tonumber(ARGV[1]) do
  local m = redis.call('LPOP', KEYS[4])
  if not m then break end
  redis.call('RPUSH', KEYS[5], m)
  out[#out + 1] = m
  local okm, msg = pcall(cjson.decode, m)
  local t = okm and type(msg) == 'table' and msg['type'] or nil
  if t == 'task_assign' and type(msg['task_id']) == 'string' then
    local task = redis.pcall('GET', ARGV[2] .. msg['task_id'])
    if type(task) == 'string' then out[3] = task end
  end
  if type(t) == 'string' and needs_cli[t] then break end
end
return out
