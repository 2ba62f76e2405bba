--[[
  Deletes the expired idle records of a few buckets of one partition (see _idle.lua), going
  round the buckets from where the last call stopped: each call takes ceil(buckets / ARGV[4])
  of them, so ARGV[4] calls sweep every bucket once.

  KEYS[1] meta hash of the partition: epoch, idle_level, idle_split, idle_count, idle_sweep
  ARGV[1] epoch the caller claimed the partition with
  ARGV[2] prefix of the partition's idle buckets
  ARGV[3] now, in minutes since the epoch: a record whose expiry is at or before it goes
  ARGV[4] calls per round of every bucket

  Returns the number of records deleted, or -1 when the epoch moved on. While a Redis Cluster
  reshard moves the partition's slot, may fail with nothing written, to be retried (see
  idleTouch in _idle.lua).
]]
--!include _idle.lua
local meta = KEYS[1]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then
  return -1
end
local level, split, count = idleShape(meta)
local buckets = 2 ^ level + split
local cursor = tonumber(redis.call('HGET', meta, 'idle_sweep')) or 0
if cursor >= buckets then
  cursor = 0
end
local now = tonumber(ARGV[3])
local steps = math.min(buckets, math.max(1, math.ceil(buckets / tonumber(ARGV[4]))))
-- The buckets of this call, touched before any is read or written: on a Redis Cluster whose slot
-- is being moved, the script fails here with nothing written (idleTouch, _idle.lua), instead of
-- failing at a bucket that has left after the buckets before it were swept.
local sweep = {}
for step = 0, steps - 1 do
  sweep[#sweep + 1] = ARGV[2] .. string.format('%d', (cursor + step) % buckets)
end
idleTouch(meta, sweep)
local removed = 0
for _, bucket in ipairs(sweep) do
  local entries = redis.call('HGETALL', bucket)
  local expired = {}
  for i = 1, #entries, 2 do
    local expiry = idleExpiry(entries[i + 1])
    if expiry ~= nil and expiry <= now then
      expired[#expired + 1] = entries[i]
    end
  end
  removed = removed + idleDelete(bucket, expired)
end
cursor = (cursor + steps) % buckets
redis.call('HSET', meta, 'idle_sweep', string.format('%d', cursor))
if removed > 0 then
  redis.call('HSET', meta, 'idle_count', string.format('%d', math.max(0, count - removed)))
end
return removed
