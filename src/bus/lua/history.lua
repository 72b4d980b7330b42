-- Reads a slice of a room's history with its head and epoch, and keeps the room alive.
-- The list holds contiguous seqs ending at head. publish.lua trims it in batches, so it may hold
-- more than HISTORY_LIMIT entries: only the newest HISTORY_LIMIT count, the ones before are
-- skipped. Of those, seq s sits at index skip + s - (head - len + 1).
-- Entries are stored as publish.lua publishes them: 'm' .. epoch .. ' ' .. json (older
-- versions stored the bare json; the broker reads both).
-- KEYS[1] meta hash   KEYS[2] history list
-- ARGV[1] 'a' (oldest messages after ARGV[2]) or 'b' (newest before ARGV[2]; '' = newest of all)
-- ARGV[2] seq bound   ARGV[3] limit
-- __HISTORY_LIMIT__ and __EXPIRE_MS__ are publish.lua's (the same RedisBroker loads both): the
-- expiry is never shorter than what publish.lua's 'keep' promises.
local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local head = tonumber(meta[1] or '0')
local epoch = meta[2]
if not epoch then
  -- A new life of the room, as in publish.lua.
  local now = redis.call('TIME')
  epoch = string.format('%x%05x', now[1], now[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
redis.call('PEXPIRE', KEYS[1], '__EXPIRE_MS__')
redis.call('PEXPIRE', KEYS[2], '__EXPIRE_MS__')
local limit = tonumber(ARGV[3])
if limit <= 0 then return { head, epoch, {} } end
local stored = redis.call('LLEN', KEYS[2])
local len = math.min(stored, __HISTORY_LIMIT__)
local skip = stored - len
local first = head - len + 1
local from, to
if ARGV[1] == 'a' then
  from = math.max(0, tonumber(ARGV[2]) + 1 - first)
  to = math.min(len - 1, from + limit - 1)
else
  local before = head + 1
  if ARGV[2] ~= '' then before = tonumber(ARGV[2]) end
  to = math.min(len, before - first) - 1
  from = math.max(0, to - limit + 1)
end
if to < from then return { head, epoch, {} } end
return { head, epoch, redis.call('LRANGE', KEYS[2], skip + from, skip + to) }
