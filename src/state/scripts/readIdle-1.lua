--[[
  Reads the idle records of some users of one partition (see _idle.lua).

  KEYS[1] meta hash of the partition (idle_level, idle_split)
  ARGV[1] prefix of the partition's idle buckets
  ARGV[2..] user keys

  Returns one value per user key: its record (expired or not), or nil. While a Redis Cluster
  reshard moves the partition's slot, fails (to be retried) unless every bucket read is on this
  node (see idleTouch in _idle.lua).
]]
--!include _idle.lua
local level, split = idleShape(KEYS[1])
-- The users' buckets, touched first: on a Redis Cluster whose slot is being moved, a bucket not
-- yet on this node would read as empty (a user's record as absent); the touch fails the script
-- instead (idleTouch, _idle.lua), and the caller retries it.
do
  local members = {}
  for i = 2, #ARGV do
    members[#members + 1] = ARGV[i]
  end
  idleTouch(KEYS[1], idleBucketsTouched(ARGV[1], members, level, split, nil))
end
local values = {}
for i = 2, #ARGV do
  values[i - 1] = redis.call('HGET', idleBucket(ARGV[1], ARGV[i], level, split), ARGV[i])
end
return values
