/**
 * Data lifecycle: the events TTL follows EVENTS_TTL_DAYS at each `migrate`; `forget` erases a
 * person from ClickHouse (events, sessions, per-user roll-up, identity links) and from the
 * running worker's Redis state (a pending repair's log included), and leaves everyone else alone.
 */
import { runForget } from '../../src/commands/forget-command';
import { runMigrate } from '../../src/commands/migrate-command';
import { loadConfig } from '../../src/config';
import { encodeIdleRecord } from '../../src/state/codec';
import { PartitionKeys } from '../../src/state/keys';
import { createKafka, createRedis, deleteRedisKeys, getClickHouse, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, produce, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('lifecycle');

async function engineFull(table: string): Promise<string> {
  const result = await db.client.query({ query: `SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '${table}'`, format: 'JSONEachRow' });
  return ((await result.json<{ engine_full: string }>())[0] as { engine_full: string }).engine_full;
}

async function countWhere(table: string, where: string): Promise<number> {
  const result = await db.client.query({ query: `SELECT count() AS n FROM ${table} WHERE ${where}`, format: 'JSONEachRow' });
  return Number(((await result.json<{ n: string }>())[0] as { n: string }).n);
}

it('migrate sets, keeps and removes the events TTL from EVENTS_TTL_DAYS', async () => {
  const clickhouse = await getClickHouse();
  const base = { CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name };
  const lines: string[] = [];
  await runMigrate({ config: loadConfig({ ...base, EVENTS_TTL_DAYS: '30' }), log: (l) => lines.push(l) });
  expect(await engineFull('events')).toMatch(/TTL toDateTime\(timestamp\) \+ toIntervalDay\(30\)/);
  expect(lines.join('\n')).toContain('events now expire 30 days after their timestamp');
  lines.length = 0;
  await runMigrate({ config: loadConfig({ ...base, EVENTS_TTL_DAYS: '30' }), log: (l) => lines.push(l) });
  expect(lines.join('\n')).not.toContain('expire');
  await runMigrate({ config: loadConfig({ ...base, EVENTS_TTL_DAYS: '0' }), log: () => undefined });
  expect(await engineFull('events')).not.toContain('TTL');
  await runMigrate({ config: loadConfig(base), log: () => undefined });
  expect(await engineFull('events')).toMatch(/toIntervalDay\(400\)/);
  expect(() => loadConfig({ EVENTS_TTL_DAYS: '1.5' })).toThrow(/EVENTS_TTL_DAYS/);
}, 60_000);

it('forget erases a person everywhere (the identity links and a repair log included) and nobody else', async () => {
  const kafka = await createKafka();
  const topic = uniqueName('forget');
  await createTopic(kafka, topic, 2);
  const prefix = newRedisPrefix('forget').slice(0, -1);
  const env = await workerEnv({ topic, groupId: uniqueName('forget_group'), redisPrefix: prefix, database: db.name });
  const worker = new WorkerProcess(env);
  const redis = createRedis();
  const config = loadConfig({ ...env, LOG_LEVEL: 'warn' });
  const out: string[] = [];
  const write = (t: string) => void out.push(t);
  try {
    await worker.ready();
    const now = Date.now() - 60_000;
    const ev = (id: string, anon: string, user?: string) => ({ event_id: id, type: 'page_view', timestamp: now, anonymous_id: anon, ...(user ? { user_id: user } : {}) });
    await produce(kafka, topic, [ev('f1', 'fa-1', 'u-forget'), ev('f2', 'fa-2', 'u-forget'), ev('f3', 'fa-2'), ev('k1', 'keep-1', 'u-keep'), ev('k2', 'keep-2')]);
    const everyone = "user_key IN ('fa-1','fa-2','keep-1','keep-2')";
    await waitFor(async () => (await countWhere('sessions FINAL', `sign = 1 AND ${everyone}`)) === 4 && (await countWhere('events', everyone)) === 5, 30_000, () => worker.output.slice(-2000));
    const stateKeys = async (user: string) => (await redis.keys(`{${prefix}:${topic}:*}:u:${user}`)).length;
    expect(await stateKeys('fa-1')).toBe(1);

    // An anonymous id alone.
    await expect(runForget({ anonymousId: 'keep-2' }, { config, write })).rejects.toThrow(/--dry-run .* --yes/);
    const dry = await runForget({ anonymousId: 'keep-2', dryRun: true }, { config, write });
    expect(dry).toMatchObject({ ids: ['keep-2'], executed: false, redisStates: 1 });
    expect(dry.rows).toMatchObject({ events: 1, sessions: expect.any(Number) });
    expect(await countWhere('events', "user_key = 'keep-2'")).toBe(1);
    await runForget({ anonymousId: 'keep-2', yes: true }, { config, write });
    expect(await countWhere('events', "user_key = 'keep-2'")).toBe(0);
    expect(await countWhere('sessions', "user_key = 'keep-2'")).toBe(0);
    expect(await stateKeys('keep-2')).toBe(0);

    // The people schema (013_people.sql) links devices to users in identity_links (identity_map is
    // a view over it): fa-1 and fa-2 came from the events; fa-9 is known only from a link.
    await db.client.command({
      query: "INSERT INTO identity_links (anonymous_id, latest) VALUES ('fa-9', (toDateTime64('2026-01-01 00:00:00', 3, 'UTC'), 'x9', 'u-forget'))",
    });
    await waitFor(async () => (await countWhere('identity_map', "user_id = 'u-forget'")) === 3, 10_000);
    // A pending repair's log names users too (the worker writes it after Redis lost commits).
    const keysOf = [0, 1].map((p) => new PartitionKeys(prefix, topic, p));
    for (const keys of keysOf) {
      await redis.zadd(keys.repair, 0, 'fa-1', 0, 'keep-1');
      await redis.hset(keys.repairBase, 'fa-1\u0000', '', 'keep-1\u0000', '');
      await redis.hset(keys.repairWrites, 'fa-1\u0000s1', '', 'keep-1\u0000s2', '');
    }
    // fa-9's sessions were forgotten long ago: only its idle record is left, in a bucket of partition 0.
    await redis.hset(`${keysOf[0]?.idle}0`, 'fa-9', encodeIdleRecord({ count: 3, lastId: 'x', expiresAtMinute: 2 ** 31 }), 'keep-9', encodeIdleRecord({ count: 1, lastId: 'y', expiresAtMinute: 2 ** 31 }));
    const done = await runForget({ userId: 'u-forget', yes: true }, { config, write });
    expect(done.ids).toEqual(['fa-1', 'fa-2', 'fa-9', 'u-forget']);
    expect(done.executed).toBe(true);
    expect(done.redisStates).toBe(3);
    expect(await redis.hkeys(`${keysOf[0]?.idle}0`)).toEqual(['keep-9']);
    const person = "user_key IN ('fa-1','fa-2','fa-9') OR user_id = 'u-forget'";
    for (const table of ['events', 'sessions', 'users_daily']) expect(await countWhere(table, person.replace('OR user_id', table === 'users_daily' ? 'OR user_key' : 'OR user_id'))).toBe(0);
    expect(await countWhere('identity_map', "user_id = 'u-forget'")).toBe(0);
    expect(await countWhere('identity_links', "anonymous_id IN ('fa-1','fa-2','fa-9')")).toBe(0);
    for (const keys of keysOf) {
      expect(await redis.zrange(keys.repair, 0, -1)).toEqual(['keep-1']);
      expect(await redis.hkeys(keys.repairBase)).toEqual(['keep-1\u0000']);
      expect(await redis.hkeys(keys.repairWrites)).toEqual(['keep-1\u0000s2']);
    }
    expect(await countWhere('identity_map', "user_id = 'u-keep'")).toBe(1);
    expect(await stateKeys('fa-1')).toBe(0);
    expect(await stateKeys('fa-2')).toBe(0);
    expect(await countWhere('sessions FINAL', "sign = 1 AND user_key = 'keep-1'")).toBe(1);
    expect(await countWhere('events', "user_key = 'keep-1'")).toBe(1);
    expect(await stateKeys('keep-1')).toBe(1);
    expect(out.join('')).toMatch(/old_parts_lifetime \(\d+ s\).*retention/);

    // The fenced worker carries on: a new event of someone else is sessionized.
    await produce(kafka, topic, [ev('k3', 'keep-3')]);
    await waitFor(async () => (await countWhere('sessions FINAL', "sign = 1 AND user_key = 'keep-3'")) === 1, 30_000, () => worker.output.slice(-2000));
    expect(await countWhere('sessions', "user_key IN ('fa-1','fa-2')")).toBe(0);
  } finally {
    await worker.kill();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}, 180_000);
