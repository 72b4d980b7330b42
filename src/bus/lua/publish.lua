-- Appends a message to a room's history and publishes it, assigning the room's next seq.
-- One script, so seq, history and fan-out can never disagree (Redis runs it atomically).
-- KEYS[1] meta hash {seq, epoch}   KEYS[2] history list
-- KEYS[3] (only with a clientMsgId) the sender's dedupe key for it: a resend is stored once
-- ARGV[1] the message as JSON without seq: '{"room":...}'   ARGV[2] history limit
-- ARGV[3] ttl ms   ARGV[4] channel   ARGV[5] epoch to use if the room starts a new life
-- ARGV[6] '1' for sharded pub/sub (SPUBLISH)
-- Published as 'm' .. epoch .. ' ' .. entry: the epoch tells subscribers when the room's
-- sequence started over (Redis lost its data), so they do not take seq 1 for a duplicate.
-- ARGV[7] dedupe window ms   ARGV[8] the message's ts
-- Returns { seq, ts of the original or false }.
if KEYS[3] then
  local prior = redis.call('GET', KEYS[3])
  if prior then
    local sep = string.find(prior, ':', 1, true)
    return { tonumber(string.sub(prior, 1, sep - 1)), string.sub(prior, sep + 1) }
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq == 1 then redis.call('HSETNX', KEYS[1], 'epoch', ARGV[5]) end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local entry = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
-- Trim only when over the limit: one command fewer per message until a room fills its history.
if redis.call('RPUSH', KEYS[2], entry) > tonumber(ARGV[2]) then
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[6] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[4], 'm' .. epoch .. ' ' .. entry)
if KEYS[3] then redis.call('SET', KEYS[3], seq .. ':' .. ARGV[8], 'PX', ARGV[7]) end
return { seq, false }
