--[[
  Recalculation: rewrites the session counters (forgotten count and last id) in the states of
  users of one partition, each only if its stored value is still exactly what the caller read
  (compare and set), and fences the partition's owner so it reloads those states instead of
  overwriting them.

  The number of keys varies with the users, so this script is registered without a fixed key
  count (like commitBatch); all keys share the partition's hash tag, so they sit in one slot.

  KEYS[1] meta hash of the partition: epoch (bumped here when any value was written), and the
          shape of its idle buckets (see _idle.lua)
  KEYS[2] close zset: user key -> time at which its open session closes
  KEYS[3..] one state key per user entry below, in the same order

  ARGV[1] prefix of the partition's idle buckets
  ARGV[2] now, in minutes since the epoch (an idle record expired by then counts as absent)
  ARGV[3 + 5*(i-1) ...] user entry i:
          member (the user key),
          where the value read was: "k" the user's state key, "i" its idle record, "" nowhere
            (then neither may exist now, but for an expired idle record),
          expected value: the exact bytes read ("" when nowhere),
          new value: a state for "k" (SET, its TTL kept), else an idle record (with its expiry),
          due flag: "1" adds the member to the close zset with score 0, so the worker
            reconciles that user (renumbering its sessions) at its next batch or tick

  Returns an array with one integer per user entry: 1 written, 0 not written because the value
  changed since the caller read it (the caller reads again and retries).
  When any entry was written, the partition's epoch is bumped: the worker holding the partition
  gets -1 (fenced) from its next commitBatch, re-claims it and reloads the states it needs.
  While a Redis Cluster reshard moves the partition's slot, may fail with nothing written, to be
  retried (see idleTouch in _idle.lua).
]]
--!include _idle.lua
local meta = KEYS[1]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local level, split, count = idleShape(meta)
-- The bucket of every entry not under its own key, touched before any write: on a Redis Cluster
-- whose slot is being moved, the script fails here with nothing written (idleTouch, _idle.lua).
-- This script adds records without splitting buckets (the owner's next commit does), so the shape
-- stays as it is.
do
  local members = {}
  for i = 3, #KEYS do
    local base = 3 + 5 * (i - 3)
    if ARGV[base + 1] ~= 'k' then
      members[#members + 1] = ARGV[base]
    end
  end
  idleTouch(meta, idleBucketsTouched(prefix, members, level, split, nil))
end
local results = {}
local written = 0
local added = 0
for i = 3, #KEYS do
  local base = 3 + 5 * (i - 3)
  local member = ARGV[base]
  local where = ARGV[base + 1]
  local expected = ARGV[base + 2]
  local value = ARGV[base + 3]
  local ok
  if where == 'k' then
    ok = redis.call('GET', KEYS[i]) == expected
    if ok then
      redis.call('SET', KEYS[i], value, 'KEEPTTL')
    end
  else
    local bucket = idleBucket(prefix, member, level, split)
    local current = redis.call('HGET', bucket, member)
    if where == 'i' then
      ok = current == expected
    else
      local expiry = current and idleExpiry(current)
      ok = redis.call('EXISTS', KEYS[i]) == 0 and (current == false or (expiry ~= nil and expiry <= now))
    end
    if ok then
      added = added + redis.call('HSET', bucket, member, value)
    end
  end
  if ok then
    if ARGV[base + 4] == '1' then
      redis.call('ZADD', KEYS[2], 0, member)
    end
    written = written + 1
    results[#results + 1] = 1
  else
    results[#results + 1] = 0
  end
end
if added > 0 then
  redis.call('HSET', meta, 'idle_count', string.format('%d', count + added))
end
if written > 0 then
  -- An epoch no worker holds (workers' epochs are '<n>-<nonce>'); the next claim makes a new one.
  redis.call('HSET', meta, 'epoch', 'recalc-' .. redis.call('HINCRBY', meta, 'epochs', 1))
end
return results
