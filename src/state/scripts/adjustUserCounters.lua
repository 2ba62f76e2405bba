--[[
  Recalculation: rewrites the session counters (`c`, `l`) in the states of users of one
  partition, each only if its state is still exactly what the caller read (compare and set), and
  fences the partition's owner so it reloads those states instead of overwriting them.

  The number of keys varies with the users, so this script is registered without a fixed key
  count (like commitBatch); all keys share the partition's hash tag, so they sit in one slot.

  KEYS[1] meta hash of the partition: epoch (bumped here when any state was written)
  KEYS[2] close zset: user key -> time at which its open session closes
  KEYS[3..] one state key per user entry below, in the same order

  ARGV[1 + 5*(i-1) ...] user entry i:
          member (the user key),
          expected state: the value the caller read ("" = the key must not exist),
          new state value,
          TTL in seconds ("" keeps the TTL of the existing key; required when it must not exist),
          due flag: "1" adds the member to the close zset with score 0, so the worker
          reconciles that user (renumbering its sessions) at its next batch or tick

  Returns an array with one integer per user entry: 1 written, 0 not written because the state
  changed since the caller read it (the caller reads again and retries).
  When any entry was written, the partition's epoch is bumped: the worker holding the partition
  gets -1 (fenced) from its next commitBatch, re-claims it and reloads the states it needs.
]]
local results = {}
local written = 0
for i = 3, #KEYS do
  local base = 1 + 5 * (i - 3)
  local member = ARGV[base]
  local expected = ARGV[base + 1]
  local value = ARGV[base + 2]
  local ttl = ARGV[base + 3]
  local current = redis.call('GET', KEYS[i])
  if current == false then
    current = ''
  end
  if current ~= expected then
    results[#results + 1] = 0
  else
    if ttl ~= '' then
      redis.call('SET', KEYS[i], value, 'EX', ttl)
    else
      redis.call('SET', KEYS[i], value, 'KEEPTTL')
    end
    if ARGV[base + 4] == '1' then
      redis.call('ZADD', KEYS[2], 0, member)
    end
    written = written + 1
    results[#results + 1] = 1
  end
end
if written > 0 then
  -- An epoch no worker holds (workers' epochs are '<n>-<nonce>'); the next claim makes a new one.
  redis.call('HSET', KEYS[1], 'epoch', 'recalc-' .. redis.call('HINCRBY', KEYS[1], 'epochs', 1))
end
return results
