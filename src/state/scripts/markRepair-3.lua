--[[
  Records that the partition's state lost commits (Redis went back in time) and ClickHouse may
  hold session rows of them: upto the state has applied `upto` again, every user the worker
  touches is added to the repair set; then those users' rows are compared with the state and
  corrected. Merged with a repair already pending (from the smaller from to the larger upto).

  KEYS[1] meta hash: epoch, repair_until
  KEYS[2] close zset: users with an open session (a lost commit may have closed one of them)
  KEYS[3] repair zset: users whose rows are to be checked

  ARGV[1] epoch the caller claimed the partition with
  ARGV[2] the offset up to which the lost commits had applied (the group's committed offset - 1)
  ARGV[3] reach: sessions of the repair's users that ended at or after this time (ms) may differ

  Returns { end offset, reach }, or -1 when the epoch moved on.
]]
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return -1
end
local upto = ARGV[2]
local pending = redis.call('HGET', KEYS[1], 'repair_until')
if pending and tonumber(pending) > tonumber(upto) then
  upto = pending
end
local reach = ARGV[3]
local pendingReach = redis.call('HGET', KEYS[1], 'repair_reach')
if pendingReach and tonumber(pendingReach) < tonumber(reach) then
  reach = pendingReach
end
redis.call('HSET', KEYS[1], 'repair_until', upto, 'repair_reach', reach)
redis.call('ZUNIONSTORE', KEYS[3], 2, KEYS[3], KEYS[2], 'WEIGHTS', 1, 0)
return { upto, reach }
