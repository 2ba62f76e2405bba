--[[
  Removes an outbox entry once its rows are confirmed in ClickHouse.

  KEYS[1] meta hash (for the epoch)
  KEYS[2] outbox hash
  ARGV[1] epoch the caller claimed the partition with
  ARGV[2] outbox sequence number

  Returns 1 when removed, 0 when it was already gone, -1 when the epoch moved on.
]]
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return -1
end
return redis.call('HDEL', KEYS[2], ARGV[2])
