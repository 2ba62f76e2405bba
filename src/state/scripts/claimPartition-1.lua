--[[
  Claims a partition for the caller: bumps its epoch so any worker that held it before can no
  longer commit (its scripts compare epochs), and returns where the partition's state stands.

  KEYS[1] meta hash of the partition: epoch, rev (commits so far), offset (last applied
          offset), watermark

  Returns { epoch, rev, offset or "-1", watermark or "" }
]]
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
local offset = redis.call('HGET', KEYS[1], 'offset') or '-1'
local watermark = redis.call('HGET', KEYS[1], 'watermark') or ''
return { epoch, rev, offset, watermark }
