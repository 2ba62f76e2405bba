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

-- The number of the bucket of a record whose hash is h, under the shape (level, split).
local function idleBucketNumber(h, level, split)
  local n = 2 ^ level
  local b = h % n
  if b < split then
    b = h % (2 * n)
  end
  return b
end

local function idleBucket(prefix, member, level, split)
  return prefix .. string.format('%d', idleBucketNumber(idleHash(member), level, split))
end

--[[
  Redis Cluster reshards. The buckets are keys a script computes, not keys it declares, so the
  node cannot check them before the script starts. While a reshard moves the partition's slot to
  another node, its keys move one by one: the script may run on the old node after a bucket has
  left it, or (sent there by ASK, once its declared keys have moved) on the new node before a
  bucket has arrived. On the old node, a command on a key that left fails the script; on the new
  node, a one-key command on a key not there yet just finds nothing (HGET answers nil, HSET
  makes a second copy of the bucket, which then stops the reshard). A command on several keys
  is refused on either node while any of them is missing.

  So each script that computes keys passes all of them, before its first write (and before it
  reads any of them), to idleTouch: one EXISTS of the meta key and those keys. While the slot
  moves, it fails the script, with nothing written, unless every key is on this node; the caller
  retries that reply ("Script attempted to access a non local key") until the reshard is over.
  A bucket that does not exist yet (nor on either node) fails it too: that only waits for the
  reshard to end. Outside a reshard it is one cheap command.
]]
local function idleTouch(meta, keys)
  for i = 1, #keys, 256 do
    redis.call('EXISTS', meta, unpack(keys, i, math.min(i + 255, #keys)))
  end
end

--[[
  The buckets a script may read or write for the records of `members`, in the order met: each
  member's bucket under the shape (level, split). With growTo (commitBatch, which splits buckets
  as records come: see grow() there) the shape first grows until it holds growTo records, and
  the list also has the buckets those splits divide and fill, and each member's bucket under
  every shape on the way. The actual count can only stay below growTo (a record replaced, or
  removed, adds nothing), so the shapes a commit passes through are among these.
  Without growTo (nil), the shape stays as it is.
]]
local function idleBucketsTouched(prefix, members, level, split, growTo)
  local keys, seen = {}, {}
  local function add(n)
    if not seen[n] then
      seen[n] = true
      keys[#keys + 1] = prefix .. string.format('%d', n)
    end
  end
  local l, s = level, split
  while growTo and growTo > IDLE_LOAD * (2 ^ l + s) do
    add(s)
    add(s + 2 ^ l)
    s = s + 1
    if s >= 2 ^ l then
      l = l + 1
      s = 0
    end
  end
  -- At each level k passed through, the split goes from `from` to `to`; a record whose bucket
  -- b = h mod 2^k is at or above the split stays in b, and is in h mod 2^(k+1) once b is split.
  for _, member in ipairs(members) do
    local h = idleHash(member)
    for k = level, l do
      local from = k == level and split or 0
      local to = k == l and s or 2 ^ k
      local b = h % (2 ^ k)
      if b >= from then
        add(b)
      end
      if b < to then
        add(h % (2 ^ (k + 1)))
      end
    end
  end
  return keys
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
