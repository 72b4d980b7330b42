-- Claims the clean-up of a process whose heartbeat expired, for a lease, so only one survivor
-- cleans it and another takes over if that one dies midway.
-- KEYS[1] nodes zset {nodeId: expiresAt ms}   ARGV[1] nodeId   ARGV[2] now ms   ARGV[3] lease ms
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return 1
