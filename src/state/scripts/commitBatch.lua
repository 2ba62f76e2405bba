--[[
  Applies one batch of a partition atomically: the new state of every user it changed, their
  deadlines, the partition's applied offset and watermark, and the session rows still to be
  written to ClickHouse (the outbox). Either all of it lands or none.

  The number of keys varies with the batch, so this script is registered without a fixed key
  count (the only one); all keys share the partition's hash tag, so they sit in one slot.

  KEYS[1] meta hash: epoch, rev, offset, watermark, seq (last outbox sequence number)
  KEYS[2] close zset: user key -> time at which its open session closes
  KEYS[3] forget zset: user key -> watermark at which its oldest session can be forgotten
  KEYS[4] outbox hash: seq -> session rows not yet confirmed in ClickHouse, as the body of their insert (RowBinary)
  KEYS[5..] one state key per changed user, in the order of the user entries below

  ARGV[1] epoch the caller claimed the partition with
  ARGV[2] rev the caller's state starts from: the number of commits so far. Each commit bumps
          it, so a retried commit whose first attempt landed is refused instead of applied twice
  ARGV[3] last applied offset after this batch (unchanged for a timer tick)
  ARGV[4] watermark after the batch
  ARGV[5] outbox payload, "" when the batch wrote no rows
  ARGV[6] commit id: random per commit, the same for every attempt of it
  ARGV[7] fingerprint of the message at the applied offset ("" keeps the stored one)
  ARGV[8] prefix of the partition's idle buckets (see _idle.lua)
  ARGV[9 + 7*(i-1) ...] user entry i: member (the user key), value, TTL in seconds (of a state
          key), close deadline ("" = none), forget deadline ("" = none), what the value is, and
          where the caller found the user's previous value:
            what  "k": a state, SET under the user's key with the TTL;
                  "i": an idle record, put in the user's idle bucket;
                  "d": nothing to keep (the user's key and record go);
            where "k" the user's key, "i" an idle record, "" neither: the other place is
                  cleared when the value moves (a state key after its sessions were forgotten
                  becomes an idle record, and back when the user returns)

  Returns the outbox sequence number of the payload (0 when there was none), or
  -1 when the epoch moved on (another worker claimed the partition), or
  -2 when rev is not ARGV[2] and the last commit that landed is this one (ARGV[6]): an earlier
     attempt whose reply was lost, so the commit already landed;
  -3 when rev is not ARGV[2] and the last commit is another one: the state is not where the
     caller left it (Redis restored from an older copy, a failover to a lagging replica), so the
     caller must reload it and re-read Kafka from the state's offset. Never success.
]]
--!include _idle.lua
local meta = KEYS[1]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then
  return -1
end
local rev = redis.call('HGET', meta, 'rev') or '0'
if rev ~= ARGV[2] then
  if redis.call('HGET', meta, 'commit') == ARGV[6] then
    return -2
  end
  return -3
end

local prefix = ARGV[8]
local level, split, count = idleShape(meta)
local idleChanged = false

-- Every bucket this commit may read or write, touched before any write: on a Redis Cluster whose
-- slot is being moved, the script fails here with nothing written (see idleTouch in _idle.lua).
do
  local members = {}
  local adding = 0
  for i = 5, #KEYS do
    local base = 9 + 7 * (i - 5)
    local what, where = ARGV[base + 5], ARGV[base + 6]
    if what == 'i' then
      adding = adding + 1
    end
    if what == 'i' or where == 'i' then
      members[#members + 1] = ARGV[base]
    end
  end
  idleTouch(meta, idleBucketsTouched(prefix, members, level, split, count + adding))
end
-- Grow the buckets with the records (those recalculation added too): a split, which reads one
-- bucket, whenever the records outnumber IDLE_LOAD a bucket, as each record comes, so that no
-- bucket outgrows the listpack limit meanwhile (Redis never turns a hash back into a listpack).
local function grow()
  while count > IDLE_LOAD * (2 ^ level + split) do
    level, split = idleSplit(prefix, level, split)
    idleChanged = true
  end
end
grow()
for i = 5, #KEYS do
  local base = 9 + 7 * (i - 5)
  local member = ARGV[base]
  local value = ARGV[base + 1]
  local what = ARGV[base + 5]
  local where = ARGV[base + 6]
  if what == 'k' then
    redis.call('SET', KEYS[i], value, 'EX', ARGV[base + 2])
  elseif what == 'i' then
    count = count + redis.call('HSET', idleBucket(prefix, member, level, split), member, value)
    idleChanged = true
    grow()
  else
    redis.call('DEL', KEYS[i])
  end
  if where == 'k' and what ~= 'k' then
    redis.call('DEL', KEYS[i])
  elseif where == 'i' and what ~= 'i' then
    count = count - redis.call('HDEL', idleBucket(prefix, member, level, split), member)
    idleChanged = true
  end
  if ARGV[base + 3] == '' then
    redis.call('ZREM', KEYS[2], member)
  else
    redis.call('ZADD', KEYS[2], ARGV[base + 3], member)
  end
  if ARGV[base + 4] == '' then
    redis.call('ZREM', KEYS[3], member)
  else
    redis.call('ZADD', KEYS[3], ARGV[base + 4], member)
  end
end
if idleChanged then
  redis.call('HSET', meta, 'idle_level', string.format('%d', level), 'idle_split', string.format('%d', split), 'idle_count', string.format('%d', count))
end

redis.call('HSET', meta, 'rev', tostring(tonumber(rev) + 1), 'offset', ARGV[3], 'watermark', ARGV[4], 'commit', ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', meta, 'fp', ARGV[7])
end
if ARGV[5] == '' then
  return 0
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSET', KEYS[4], seq, ARGV[5])
return seq
