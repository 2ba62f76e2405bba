--[[
  Reads the idle records of some users of one partition (see _idle.lua).

  KEYS[1] meta hash of the partition (idle_level, idle_split)
  ARGV[1] prefix of the partition's idle buckets
  ARGV[2..] user keys

  Returns one value per user key: its record (expired or not), or nil.
]]
--!include _idle.lua
local level, split = idleShape(KEYS[1])
local values = {}
for i = 2, #ARGV do
  values[i - 1] = redis.call('HGET', idleBucket(ARGV[1], ARGV[i], level, split), ARGV[i])
end
return values
