-- Removes one connection from a room; the user leaves when it was their last connection.
-- KEYS as presence-add.lua   ARGV[1] connKey
-- Returns false if the connection was not there, else { lastOfUser 0|1, userId, name }
local user = redis.call('HGET', KEYS[2], ARGV[1])
if not user then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
local name = redis.call('HGET', KEYS[1], user) or user
if redis.call('HINCRBY', KEYS[3], user, -1) > 0 then return { 0, user, name } end
redis.call('HDEL', KEYS[3], user)
redis.call('HDEL', KEYS[1], user)
return { 1, user, name }
