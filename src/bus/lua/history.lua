-- Reads a slice of a room's history with its head and epoch, and keeps the room alive.
-- The list holds contiguous seqs ending at head, so seq s sits at index s - (head - len + 1).
-- KEYS[1] meta hash   KEYS[2] history list
-- ARGV[1] 'a' (oldest messages after ARGV[2]) or 'b' (newest before ARGV[2]; '' = newest of all)
-- ARGV[2] seq bound   ARGV[3] limit   ARGV[4] ttl ms   ARGV[5] epoch to use if the room is new
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local limit = tonumber(ARGV[3])
if limit <= 0 then return { head, epoch, {} } end
local len = redis.call('LLEN', KEYS[2])
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
return { head, epoch, redis.call('LRANGE', KEYS[2], from, to) }
