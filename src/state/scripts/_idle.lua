--[[
  Idle records (included by the scripts that read or write them; not a command of its own).

  A user key whose sessions were all forgotten keeps only a few bytes that number its next
  session (src/state/codec.ts, "Idle record"). A string key of its own would cost about 100 bytes
  of Redis overhead (the key name, the key's headers, its TTL), so the records live as fields of
  small hashes instead: field = user key, value = the record. The hashes ("buckets") are
  `<prefix><n>`, with prefix `{tag}:i:`, and grow by linear hashing, so each stays small enough
  for Redis to keep it as a listpack (a few bytes of overhead per field) however many records a
  partition has:

    h        = the first 32 bits of SHA-1 of the user key
    bucket   = h mod 2^level, or h mod 2^(level + 1) when that is below split
    buckets  = 0 .. 2^level + split - 1

  When the partition holds more than IDLE_LOAD records per bucket, bucket `split` is divided
  between itself and bucket `split + 2^level` (commitBatch does it, as the records come). Buckets
  are never merged. A bucket not yet split in the current round holds up to twice the average,
  so IDLE_LOAD = 32 keeps the fullest ones (about 64, and rarely above 100) below Redis's default
  hash-max-listpack-entries of 128. The meta hash of the partition holds idle_level, idle_split, idle_count (the
  records, expired ones included until swept) and idle_sweep (the sweep's next bucket).

  A record carries its own expiry (bytes 2-5, minutes since the epoch, big-endian): readers treat
  an expired record as absent, and sweepIdle deletes them bucket by bucket.
]]
local IDLE_LOAD = 32

local function idleShape(meta)
  local v = redis.call('HMGET', meta, 'idle_level', 'idle_split', 'idle_count')
  return tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
end

local function idleHash(member)
  return tonumber(string.sub(redis.sha1hex(member), 1, 8), 16)
end

local function idleBucket(prefix, member, level, split)
  local h = idleHash(member)
  local n = 2 ^ level
  local b = h % n
  if b < split then
    b = h % (2 * n)
  end
  return prefix .. string.format('%d', b)
end

-- The expiry minute of a record; nil for a value that is not a record of format 1.
local function idleExpiry(value)
  if #value < 5 or string.byte(value, 1) ~= 1 then
    return nil
  end
  local a, b, c, d = string.byte(value, 2, 5)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- HDEL of many fields, in chunks (Lua's unpack has a limit); returns how many were removed.
local function idleDelete(bucket, fields)
  local removed = 0
  for i = 1, #fields, 256 do
    removed = removed + redis.call('HDEL', bucket, unpack(fields, i, math.min(i + 255, #fields)))
  end
  return removed
end

-- Divides bucket `split` between itself and bucket split + 2^level; returns the new level, split.
local function idleSplit(prefix, level, split)
  local n = 2 ^ level
  local from = prefix .. string.format('%d', split)
  local to = prefix .. string.format('%d', split + n)
  local entries = redis.call('HGETALL', from)
  local moved = {}
  for i = 1, #entries, 2 do
    if idleHash(entries[i]) % (2 * n) ~= split then
      redis.call('HSET', to, entries[i], entries[i + 1])
      moved[#moved + 1] = entries[i]
    end
  end
  idleDelete(from, moved)
  split = split + 1
  if split >= n then
    level = level + 1
    split = 0
  end
  return level, split
end
