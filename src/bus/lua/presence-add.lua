-- Adds one connection of a user to a room, checking capacity (in users) in the same step.
-- KEYS[1] users hash {userId: name}   KEYS[2] conns hash {connKey: userId}   KEYS[3] counts hash {userId: n}
-- ARGV[1] userId   ARGV[2] name   ARGV[3] connKey   ARGV[4] capacity (0 = none)
-- Returns { admitted 0|1, firstOfUser 0|1, users as a flat id, name, ... list }
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  return { 1, 0, redis.call('HGETALL', KEYS[1]) }
end
local first = 0
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  local capacity = tonumber(ARGV[4])
  if capacity > 0 and redis.call('HLEN', KEYS[1]) >= capacity then return { 0, 0, {} } end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  first = 1
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return { 1, first, redis.call('HGETALL', KEYS[1]) }
