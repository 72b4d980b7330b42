-- Appends a message to a room's history and publishes it, assigning the room's next seq.
-- One script, so seq, history and fan-out can never disagree (Redis runs it atomically).
-- KEYS[1] meta hash {seq, epoch, keep}
-- KEYS[2] history list; its name is also the room's channel (keys and channels do not share a
--         namespace), so the script needs no extra argument to name it
-- KEYS[3], KEYS[4] (only with a clientMsgId) the room's resend hashes, current and previous
--         generation: field (sender, clientMsgId) -> 'seq:ts', so a resend is stored once
-- ARGV[1] the message as JSON without seq and without its opening brace: '"room":...}'
-- ARGV[2] the message's ts, ms since 1970 (13 digits)
-- ARGV[3] (only with KEYS[3]) the resend hashes' field for this message
-- then (optional) seq and epoch of the newest message the publisher has delivered:
--         a room whose seq is behind it (a replica promoted without its master's last writes)
--         continues after it, so no seq is handed out twice in one epoch
-- Returns seq, or { seq, ts } of the original when the resend hashes say this is a resend.
--
-- __HISTORY_LIMIT__, __TRIM_AT__, __EXPIRE_MS__, __REFRESH_MS__, __DEDUPE_MS__ and __SHARDED__ (1 on a Redis
-- Cluster: publish with SPUBLISH to the room's sharded channel) are replaced by numbers when
-- the broker loads the script (RedisScript's constants): constants in the source cost nothing
-- per call, where every argument is one more Lua string and table slot per message.
--
-- Cost matters here: every chat message runs this. Redis CPU per message went mostly to Lua
-- strings, argument tables and the overhead of each redis.call, so the common case is four
-- calls (HINCRBY, HMGET, RPUSH, PUBLISH), one string built (the entry, stored and published as
-- is), and the TTL check is two comparisons and two tonumber calls.
--
-- Published and stored as 'm' .. epoch .. ' ' .. json: the epoch tells subscribers when the
-- room's sequence started over (Redis lost its data), so they do not take seq 1 for a duplicate.
--
-- TTL: refreshing both keys on every message cost two calls. Instead 'keep' holds the ts until
-- which the keys' current expiry still covers ts + HISTORY_TTL: a refresh sets them to expire in
-- EXPIRE_MS = HISTORY_TTL + 2 * REFRESH_MS and keep to ts + REFRESH_MS, so an active room
-- refreshes once per REFRESH_MS, and its data expires between HISTORY_TTL and HISTORY_TTL +
-- 2 * REFRESH_MS after its last message; never earlier while the clocks of the processes that
-- write the room differ by less than REFRESH_MS (ts is the sending process's clock). A process
-- whose clock runs ahead costs extra refreshes, never an early expiry of an active room.
-- Resends: a key per message (SET PX) cost a new key for every message of every client, each
-- one a key a reshard moves, and made publishes TRYAGAIN while its room's slot was migrating (a
-- new key has no home yet). Two hashes per room instead, rotated by their TTL, that is by Redis's
-- clock (the processes' clocks may disagree): a generation is created to expire in
-- 2 * DEDUPE_MS + a minute and takes entries until it has less than DEDUPE_MS + a minute left,
-- then becomes the previous one, kept as long as the new one. An entry is remembered for at least
-- DEDUPE_MS, and both hashes exist while either does.
local sent = KEYS[3]
local field, seen = ARGV[3], 3
if sent then
  seen = 4
  local prior = redis.call('HGET', sent, field) or redis.call('HGET', KEYS[4], field)
  if prior then
    local sep = string.find(prior, ':', 1, true)
    return { tonumber(string.sub(prior, 1, sep - 1)), string.sub(prior, sep + 1) }
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', '1')
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'keep')
local epoch = meta[1]
if not epoch then
  -- A new life of the room: its epoch is Redis's clock in microseconds, in hex. Two lives of a
  -- room never start in the same microsecond (the old one's data must be gone first).
  local now = redis.call('TIME')
  epoch = string.format('%x%05x', now[1], now[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
if ARGV[seen] and seq <= tonumber(ARGV[seen]) and epoch == ARGV[seen + 1] then
  seq = tonumber(ARGV[seen]) + 1
  redis.call('HSET', KEYS[1], 'seq', seq)
end
local entry = string.format('m%s {"seq":%d,%s', epoch, seq, ARGV[1])
-- Trim in batches: a busy room sits at its limit, and trimming it on every message cost an LTRIM
-- per message (7% of the script's Redis CPU, measured). The list may hold up to TRIM_AT entries
-- (HISTORY_LIMIT plus a tenth, at most 256); history.lua reads only the newest HISTORY_LIMIT.
if redis.call('RPUSH', KEYS[2], entry) > __TRIM_AT__ then
  redis.call('LTRIM', KEYS[2], '-__HISTORY_LIMIT__', '-1')
end
local ts, keep = ARGV[2], meta[2]
-- A keep further ahead than one refresh was written by a process whose clock runs ahead: refresh
-- then too, or the room would go unrefreshed while that process is quiet.
if not keep or #ts ~= #keep or ts > keep or tonumber(keep) - tonumber(ts) > __REFRESH_MS__ then
  redis.call('PEXPIRE', KEYS[1], '__EXPIRE_MS__')
  redis.call('PEXPIRE', KEYS[2], '__EXPIRE_MS__')
  redis.call('HSET', KEYS[1], 'keep', string.format('%d', ts + __REFRESH_MS__))
end
-- On a Redis Cluster the channel is a sharded one, on the room's shard (SHARDED = 1).
redis.call(__SHARDED__ == 1 and 'SPUBLISH' or 'PUBLISH', KEYS[2], entry)
if sent then
  -- Missing (-2), without a TTL (-1: something else wrote it), or past its first DEDUPE_MS: the
  -- current generation becomes the previous one and a new one starts. UNLINK frees the one
  -- before in the background: a busy room's can hold many thousand entries.
  local lifetime = 2 * __DEDUPE_MS__ + 60000
  if redis.call('PTTL', sent) < lifetime - __DEDUPE_MS__ then
    redis.call('UNLINK', KEYS[4])
    if redis.call('EXISTS', sent) == 1 then
      redis.call('RENAME', sent, KEYS[4])
    else
      -- Empty but present: a room whose keys all exist never answers TRYAGAIN while its slot migrates.
      redis.call('HSET', KEYS[4], '', '')
    end
    redis.call('PEXPIRE', KEYS[4], lifetime)
    redis.call('HSET', sent, field, seq .. ':' .. ts)
    redis.call('PEXPIRE', sent, lifetime)
  else
    redis.call('HSET', sent, field, seq .. ':' .. ts)
  end
end
return seq
