/**
 * The partition state store's Redis layout against a real Redis: states in their own keys in the
 * binary form, idle records (users whose sessions were all forgotten) as fields of the
 * partition's idle buckets, which grow by linear hashing and stay small; a user's value moving
 * between the two; expiry and the sweep; and states written by the previous release (JSON)
 * loading and moving to the new layout as the worker commits them (a rolling upgrade).
 */
import { applyEvent, newKeyState, reconcile, type KeyState } from '../../src/engine/engine';
import { PartitionFencedError } from '../../src/errors';
import { parseSessionEvent } from '../../src/events/parse-event';
import { decodeIdleRecord, decodeState, encodeStateJson } from '../../src/state/codec';
import { IDLE_SWEEP_CALLS_PER_ROUND, PartitionStateStore, readStoredValues, type UserUpdate } from '../../src/state/partition-state-store';
import { defineStateCommands, scriptText } from '../../src/state/script-loader';
import { createRedis, deleteRedisKeys, newRedisPrefix } from '../support';

const redis = defineStateCommands(createRedis());
const prefix = newRedisPrefix('idle');
const MINUTE = 60_000;
const DAY = 86_400_000;
const TTL = { activeSeconds: 3600, idleSeconds: 400 * 86_400 };
const engine = { timeoutMs: 30 * MINUTE, latenessMs: 60 * MINUTE };
const t0 = Date.UTC(2024, 4, 1, 10);

afterAll(async () => {
  await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
});

function idleState(userKey: string, count: number): KeyState {
  return { ...newKeyState(userKey), forgottenCount: count, forgottenLastId: `${count}`.padStart(32, 'a') };
}

function activeState(userKey: string, at: number, state = newKeyState(userKey)): KeyState {
  const event = parseSessionEvent(JSON.stringify({ event_id: `${userKey}-${at}`, type: 'page_view', timestamp: at, anonymous_id: userKey, page: { path: '/x' } }));
  if (event instanceof Error) throw event;
  applyEvent(state, event, engine, at);
  reconcile(state, engine, at);
  return state;
}

async function commitAll(store: PartitionStateStore, epoch: string, rev: number, states: KeyState[]): Promise<number> {
  const updates: UserUpdate[] = states.map((state) => ({ state, closeAt: null, forgetAt: null }));
  await store.commit({ epoch, rev, offset: String(rev), watermark: t0, payload: Buffer.alloc(0), commitId: `c${rev}`, fingerprint: '', updates });
  return rev + 1;
}

async function bucketsOf(store: PartitionStateStore): Promise<string[]> {
  return (await redis.keys(`${store.keys.idle.replace(/[{}]/g, (c) => `\\${c}`)}*`)).sort();
}

it('keeps idle records in small buckets that split as they fill, and moves a user between its key and a record', async () => {
  const store = new PartitionStateStore(redis, prefix, 'events', 0, TTL);
  const { epoch } = await store.claim();
  let rev = 0;
  const users = Array.from({ length: 3_000 }, (_, i) => `anon-${i}`);
  // The first commit forgets 1,000 users at once: buckets split as the records come, so none
  // ever outgrows a listpack (Redis never turns a hash table back into one).
  for (let i = 0; i < users.length; i += i === 0 ? 1_000 : 250) {
    const batch = users.slice(i, i + (i === 0 ? 1_000 : 250));
    expect((await store.loadStates(batch)).size).toBe(0);
    rev = await commitAll(store, epoch, rev, batch.map((u, j) => idleState(u, i + j + 1)));
  }
  const [level, split, count] = await redis.hmget(store.keys.meta, 'idle_level', 'idle_split', 'idle_count');
  expect(count).toBe('3000');
  const buckets = await bucketsOf(store);
  expect(buckets).toHaveLength(2 ** Number(level) + Number(split));
  expect(buckets.length).toBeGreaterThanOrEqual(Math.floor(3_000 / 32));
  let bytes = 0;
  let largest = 0;
  for (const bucket of buckets) {
    expect(await redis.object('ENCODING', bucket)).toBe('listpack');
    bytes += Number(await redis.call('MEMORY', 'USAGE', bucket, 'SAMPLES', '0'));
    largest = Math.max(largest, await redis.hlen(bucket));
  }
  console.log(`idle records: ${buckets.length} buckets, at most ${largest} records in one, ${Math.round(bytes / 3_000)} bytes per record`);
  expect(bytes / 3_000).toBeLessThan(60);
  expect(largest).toBeLessThanOrEqual(128); // Redis's default listpack limit (hash-max-listpack-entries)

  // Every record is found where it went, whatever the splits since it was written.
  const loaded = await store.loadStates(users);
  users.forEach((u, i) => expect(loaded.get(u)).toEqual(idleState(u, i + 1)));
  expect(await redis.exists(...users.slice(0, 10).map((u) => store.keys.user(u)))).toBe(0);

  // A user who returns gets a state key again and loses the record; and back once forgotten.
  const back = activeState('anon-7', t0, loaded.get('anon-7'));
  rev = await commitAll(store, epoch, rev, [back]);
  expect((await readStoredValues(redis, store.keys, ['anon-7']))[0]?.where).toBe('key');
  expect(await redis.ttl(store.keys.user('anon-7'))).toBeGreaterThan(3500);
  expect(await redis.hget(store.keys.meta, 'idle_count')).toBe('2999');
  const again = (await store.loadStates(['anon-7'])).get('anon-7') as KeyState;
  expect(again.sessions).toEqual(back.sessions);
  again.sessions = [];
  again.seen.clear();
  again.forgottenCount = 9;
  rev = await commitAll(store, epoch, rev, [again]);
  expect(await redis.exists(store.keys.user('anon-7'))).toBe(0);
  expect((await store.loadStates(['anon-7'])).get('anon-7')).toMatchObject({ forgottenCount: 9, sessions: [] });
  expect(await redis.hget(store.keys.meta, 'idle_count')).toBe('3000');

  // A user with nothing to number by (its only events were late) leaves nothing behind.
  rev = await commitAll(store, epoch, rev, [newKeyState('nobody')]);
  expect(await readStoredValues(redis, store.keys, ['nobody'])).toEqual([null]);

  // The scripts refuse a caller that lost the partition.
  await expect(store.sweepIdle('1-stale')).rejects.toThrow(PartitionFencedError);
  await store.reset();
  expect(await bucketsOf(store)).toEqual([]);
});

it('treats an expired record as absent, replaces it, and sweeps expired records away within a round', async () => {
  let now = t0;
  const store = new PartitionStateStore(redis, prefix, 'events', 1, { activeSeconds: 3600, idleSeconds: 86_400 }, undefined, () => now);
  const { epoch } = await store.claim();
  const users = Array.from({ length: 500 }, (_, i) => `u-${i}`);
  let rev = await commitAll(store, epoch, 0, users.map((u) => idleState(u, 3)));
  const record = decodeIdleRecord((await readStoredValues(redis, store.keys, ['u-1']))[0]?.bytes as Buffer);
  expect(record.expiresAtMinute).toBe(Math.ceil((t0 + DAY) / MINUTE));

  now = t0 + DAY - MINUTE;
  expect((await store.loadStates(['u-1'])).get('u-1')).toMatchObject({ forgottenCount: 3 });
  expect(await store.sweepIdle(epoch)).toBe(0);
  now = t0 + DAY;
  // Expired: loaded as a user never seen (numbering starts again, as when a key's TTL ran out).
  const expired = (await store.loadStates(['u-1', 'u-2'])).get('u-1') as KeyState;
  expect(expired).toEqual(newKeyState('u-1'));
  // Committed with a session, the stale record goes; committed idle, it is replaced.
  rev = await commitAll(store, epoch, rev, [activeState('u-1', t0 + DAY, expired), idleState('u-2', 1)]);
  expect((await readStoredValues(redis, store.keys, ['u-1']))[0]?.where).toBe('key');
  expect(await redis.hget(store.keys.meta, 'idle_count')).toBe('499');

  // The sweep: one bucket per call here (few buckets), all of them in a round.
  const buckets = (await bucketsOf(store)).length;
  expect(buckets).toBeGreaterThan(5);
  expect(buckets).toBeLessThan(IDLE_SWEEP_CALLS_PER_ROUND);
  let swept = 0;
  for (let i = 0; i < buckets; i++) swept += await store.sweepIdle(epoch);
  expect(swept).toBe(498); // every record but u-2's, written a day later
  expect(await redis.hget(store.keys.meta, 'idle_count')).toBe('1');
  expect((await store.loadStates(users)).size).toBe(2); // u-1 (a state key) and u-2
  expect(await store.sweepIdle(epoch)).toBe(0);
  void rev;
});

it('loads the JSON states of the previous release and moves them to the new layout when it commits them', async () => {
  const store = new PartitionStateStore(redis, prefix, 'events', 2, TTL);
  const { epoch } = await store.claim();
  // As the previous release left them: a state with an open session, and compact records.
  const open = activeState('old-open', t0);
  await redis.set(store.keys.user('old-open'), encodeStateJson(open), 'EX', 3600);
  await redis.set(store.keys.user('old-idle'), '{"c":4,"l":"0123456789abcdef0123456789abcdef"}', 'EX', 3600);
  await redis.set(store.keys.user('old-back'), '{"c":2,"l":"x"}', 'EX', 3600);

  const loaded = await store.loadStates(['old-open', 'old-idle', 'old-back']);
  expect(loaded.get('old-open')).toEqual(open);
  expect(loaded.get('old-idle')).toMatchObject({ forgottenCount: 4, forgottenLastId: '0123456789abcdef0123456789abcdef', sessions: [] });
  const openState = loaded.get('old-open') as KeyState;
  activeState('old-open', t0 + MINUTE, openState);
  const back = activeState('old-back', t0, loaded.get('old-back'));
  await commitAll(store, epoch, 0, [openState, loaded.get('old-idle') as KeyState, back]);

  // Active states: binary, under their keys; the compact record: an idle record, its key gone.
  const [openValue, idleValue, backValue] = await readStoredValues(redis, store.keys, ['old-open', 'old-idle', 'old-back']);
  expect(openValue?.where).toBe('key');
  expect(openValue?.bytes[0]).toBe(1);
  expect(decodeState('old-open', openValue?.bytes as Buffer)).toEqual(openState);
  expect(idleValue?.where).toBe('idle');
  expect(decodeIdleRecord(idleValue?.bytes as Buffer)).toMatchObject({ count: 4, lastId: '0123456789abcdef0123456789abcdef' });
  expect(await redis.exists(store.keys.user('old-idle'))).toBe(0);
  expect(backValue?.where).toBe('key');
  expect(decodeState('old-back', backValue?.bytes as Buffer)).toMatchObject({ forgottenCount: 2, forgottenLastId: 'x' });
  expect(decodeState('old-back', backValue?.bytes as Buffer).sessions[0]?.written).toMatchObject({ session_number: 3, previous_session_id: 'x' });
});

it('lists exactly the buckets a commit may touch (idleBucketsTouched): every bucket its splits divide or fill, and each record’s bucket under every shape on the way', async () => {
  // Against a plain replay: the shapes one at a time as the records come, each member's bucket
  // under each. The function must list the same set (a bucket more would, during a reshard, wait
  // for a key that no script makes; one fewer would let a script write where it did not look).
  const check = `${scriptText('_idle.lua')}
    local members = {}
    for i = 1, tonumber(ARGV[4]) do members[i] = 'm' .. i end
    local level, split = tonumber(ARGV[1]), tonumber(ARGV[2])
    local growTo = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil
    local listed = idleBucketsTouched('b:', members, level, split, growTo)
    local expected, l, s = {}, level, split
    local function shape()
      for _, m in ipairs(members) do expected[idleBucket('b:', m, l, s)] = true end
    end
    shape()
    while growTo and growTo > IDLE_LOAD * (2 ^ l + s) do
      expected['b:' .. string.format('%d', s)] = true
      expected['b:' .. string.format('%d', s + 2 ^ l)] = true
      s = s + 1
      if s >= 2 ^ l then l = l + 1; s = 0 end
      shape()
    end
    local seen, extra, missing = {}, {}, {}
    for _, key in ipairs(listed) do
      if seen[key] then return redis.error_reply('listed twice: ' .. key) end
      seen[key] = true
      if not expected[key] then extra[#extra + 1] = key end
    end
    for key in pairs(expected) do if not seen[key] then missing[#missing + 1] = key end end
    table.sort(extra)
    table.sort(missing)
    return { #listed, extra, missing }`;
  const cases: Array<[number, number, string, number]> = [
    [0, 0, '', 1], // one record, the first bucket
    [2, 1, '', 200], // no growth: each member's one bucket
    [0, 0, '500', 300], // from one bucket to 16
    [3, 5, '900', 50], // mid-round, across a level
    [4, 15, '545', 120], // the last split of a level, then one more
  ];
  for (const [level, split, growTo, members] of cases) {
    const [count, extra, missing] = (await redis.eval(check, 0, level, split, growTo, members)) as [number, string[], string[]];
    expect({ level, split, growTo, extra, missing }).toEqual({ level, split, growTo, extra: [], missing: [] });
    expect(count).toBeGreaterThan(0);
  }
});
