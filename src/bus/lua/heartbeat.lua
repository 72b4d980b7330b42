-- Writes a process's heartbeat and returns the score it replaced (false when there was none).
-- A score other than the one the process last wrote means a survivor took it for dead and
-- claimed it (claim-node.lua), and may have removed some of its entries: it re-asserts them.
-- KEYS[1] nodes zset {nodeId: expiresAt ms}   ARGV[1] nodeId   ARGV[2] expiresAt ms
local previous = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return previous
