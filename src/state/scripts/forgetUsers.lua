--[[
  Erases users' state in one partition (`sessionizer forget`): deletes each user's state key and
  idle record, takes the users out of the close and forget queues and out of a pending repair
  (its user set, and the rows it recorded per `user NUL session id`; a user key may hold a NUL
  itself, see src/events/visitor-key.ts), and, when anything was
  deleted, bumps the partition's epoch. The bump fences the worker that owns the partition: its
  next commit is refused, it re-claims the partition and reloads its states, so a state it held
  in memory is not written back.

  KEYS[1] meta hash of the partition (epoch, the shape of its idle buckets: see _idle.lua)
  KEYS[2] close-deadline zset
  KEYS[3] forget-deadline zset
  KEYS[4] repair zset (users whose rows a repair checks)
  KEYS[5] repair base hash, KEYS[6] repair writes hash (fields `user NUL session id`)
  KEYS[7..] the users' state keys
  ARGV[1] prefix of the partition's idle buckets
  ARGV[i + 1] the user key of KEYS[i + 6] (the member name in the zsets)

  Returns the number of state keys and idle records deleted. While a Redis Cluster reshard moves
  the partition's slot, may fail with nothing deleted, to be retried (see idleTouch in _idle.lua).
]]
--!include _idle.lua
local deleted = 0
local users = {}
local level, split, count = idleShape(KEYS[1])
-- Every user's bucket, touched before any write: on a Redis Cluster whose slot is being moved,
-- the script fails here with nothing written (idleTouch, _idle.lua); the caller retries it.
do
  local members = {}
  for i = 7, #KEYS do
    members[#members + 1] = ARGV[i - 5]
  end
  idleTouch(KEYS[1], idleBucketsTouched(ARGV[1], members, level, split, nil))
end
local records = 0
for i = 7, #KEYS do
  local user = ARGV[i - 5]
  deleted = deleted + redis.call('DEL', KEYS[i])
  records = records + redis.call('HDEL', idleBucket(ARGV[1], user, level, split), user)
  redis.call('ZREM', KEYS[2], user)
  redis.call('ZREM', KEYS[3], user)
  redis.call('ZREM', KEYS[4], user)
  users[user .. '\0'] = true
end
-- Repair hashes exist only while a repair is pending, and are small: read their fields whole.
for k = 5, 6 do
  local fields = redis.call('HKEYS', KEYS[k])
  for _, field in ipairs(fields) do
    -- The LAST NUL ends the user key: a user key of a site other than `default` holds one
    -- itself (site NUL user key, src/events/visitor-key.ts); session ids are hex.
    local nul, at = nil, string.find(field, '\0', 1, true)
    while at do
      nul = at
      at = string.find(field, '\0', at + 1, true)
    end
    if nul and users[string.sub(field, 1, nul)] then redis.call('HDEL', KEYS[k], field) end
  end
end
deleted = deleted + records
if records > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'idle_count', string.format('%d', math.max(0, count - records)))
end
if deleted > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  -- A new epoch of the claim's form (a string): the owner's next commit no longer matches it.
  redis.call('HSET', KEYS[1], 'epoch', 'forget-' .. redis.call('HINCRBY', KEYS[1], 'epochs', 1))
end
return deleted
