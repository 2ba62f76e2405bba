--[[
  Erases users' state in one partition (`sessionizer forget`): deletes each user's state key,
  takes the users out of the close and forget queues, and, when anything was deleted, bumps the
  partition's epoch. The bump fences the worker that owns the partition: its next commit is
  refused, it re-claims the partition and reloads its states, so a state it held in memory is
  not written back.

  KEYS[1] meta hash of the partition (epoch)
  KEYS[2] close-deadline zset
  KEYS[3] forget-deadline zset
  KEYS[4..] the users' state keys
  ARGV[i] the user key of KEYS[i + 3] (the member name in the zsets)

  Returns the number of state keys deleted.
]]
local deleted = 0
for i = 4, #KEYS do
  deleted = deleted + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[2], ARGV[i - 3])
  redis.call('ZREM', KEYS[3], ARGV[i - 3])
end
if deleted > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'epoch', 1)
end
return deleted
