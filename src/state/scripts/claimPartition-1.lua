--[[
  Claims a partition for the caller: bumps its epoch so any worker that held it before can no
  longer commit (its scripts compare epochs), and returns where the partition's state stands.

  KEYS[1] meta hash of the partition: epoch, rev (commits so far), offset (last applied
          offset), watermark, gen (which log the state belongs to), fp (fingerprint of the
          message at the applied offset), repair_until (see markRepair-3.lua)

  ARGV[1] a random nonce: part of the new epoch, so an epoch restored from an older copy of
          Redis can never equal one a worker holds; also the generation of a partition that has
          no state yet
  Returns { epoch, rev, offset or "-1", watermark or "", gen, fp or "", repair_until or "", repair_reach or "" }
]]
local n = redis.call('HINCRBY', KEYS[1], 'epochs', 1)
local epoch = tostring(n) .. '-' .. ARGV[1]
redis.call('HSET', KEYS[1], 'epoch', epoch)
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then
  gen = ARGV[1]
  redis.call('HSET', KEYS[1], 'gen', gen)
end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
local offset = redis.call('HGET', KEYS[1], 'offset') or '-1'
local watermark = redis.call('HGET', KEYS[1], 'watermark') or ''
local fp = redis.call('HGET', KEYS[1], 'fp') or ''
local repair = redis.call('HGET', KEYS[1], 'repair_until') or ''
local reach = redis.call('HGET', KEYS[1], 'repair_reach') or ''
return { epoch, rev, offset, watermark, gen, fp, repair, reach }
