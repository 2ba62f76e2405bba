--[[
  Ends a repair: its users' rows in ClickHouse now match the state.

  KEYS[1] meta hash: epoch, repair_until, repair_reach
  KEYS[2] repair zset
  KEYS[3] repair base hash
  KEYS[4] repair writes hash

  ARGV[1] epoch the caller claimed the partition with

  Returns 1, or -1 when the epoch moved on.
]]
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return -1
end
redis.call('HDEL', KEYS[1], 'repair_until', 'repair_reach')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return 1
