/**
 * The streaming worker against real Kafka, Redis and ClickHouse: after the stream goes quiet,
 * `sessions FINAL WHERE sign = 1` must equal `recompute` over the same events, field for field.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import type { KeyState } from '../../src/engine/engine';
import { decodeIdleRecord } from '../../src/state/codec';
import { PartitionKeys } from '../../src/state/keys';
import { readStoredValues, storedState, type StoredValue } from '../../src/state/partition-state-store';
import { defineStateCommands } from '../../src/state/script-loader';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import { readTopic } from '../support/read-topic';
import { TcpProxy } from '../support/tcp-proxy';
import {
  WorkerProcess,
  createTopic,
  groupLag,
  currentSessions,
  waitFor,
  produce,
  recomputeRecords,
  waitForSessions,
  workerEnv,
} from '../support/worker-harness';

jest.setTimeout(240_000);

function traffic(users: number, seed: number, extra: Partial<Parameters<typeof generateTraffic>[0]> = {}): RawEvent[] {
  return [
    ...generateTraffic({
      users,
      startMs: Date.parse('2024-05-01T00:00:00Z'),
      spanMs: 12 * 3_600_000,
      duplicateRate: 0.02,
      disorderMs: 120_000,
      seed,
      idPrefix: `s${seed}-`,
      ...extra,
    }),
  ];
}

describe('sessionizer worker', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  const workers: WorkerProcess[] = [];
  const redisPrefixes: string[] = [];

  beforeAll(async () => {
    kafka = await createKafka('worker-test');
    admin = await createClickHouseClient();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    await admin.close();
    // State keys start with the hash tag: `{prefix:topic:partition}:…`.
    const redis = createRedis();
    for (const prefix of redisPrefixes) await deleteRedisKeys(redis, `{${prefix}`);
    await redis.quit();
  });

  /** A fresh topic, database and Redis prefix, and a way to start workers on them. */
  async function setUp(name: string, options: { partitions?: number } & Partial<Parameters<typeof workerEnv>[0]> = {}) {
    const { partitions = 4, ...envOptions } = options;
    const topic = uniqueName(name);
    const database = uniqueName(name);
    await createTopic(kafka, topic, partitions);
    await migrate(admin, { database, cluster: '' });
    const redisPrefix = newRedisPrefix(name);
    redisPrefixes.push(redisPrefix);
    const env = await workerEnv({ topic, groupId: uniqueName(`${name}_group`), redisPrefix, database, ...envOptions });
    const start = () => {
      const w = new WorkerProcess(env);
      workers.push(w);
      return w;
    };
    return { topic, database, env, redisPrefix, start };
  }

  it('one worker over 50,000 events from 2,000+ users with duplicates and disorder equals recompute', async () => {
    const { topic, database, start } = await setUp('single');
    const events = traffic(2_800, 11);
    expect(events.length).toBeGreaterThanOrEqual(50_000);
    await produce(kafka, topic, events);
    const worker = start();
    const expected = await recomputeRecords(events);
    await waitForSessions(admin, database, expected, 180_000, () => worker.output);
    expect(await worker.stop()).toBe(0);
  });

  it('three workers with a rebalance mid-stream (one leaves, one joins) equal recompute', async () => {
    const { topic, database, start } = await setUp('rebalance');
    const events = traffic(2_200, 12);
    const expected = await recomputeRecords(events);
    const third = Math.floor(events.length / 3);
    const [a, b, c] = [start(), start(), start()];
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    await produce(kafka, topic, events.slice(0, third));
    await sleep(2_000);
    expect(await b.stop()).toBe(0); // one leaves
    await produce(kafka, topic, events.slice(third, 2 * third));
    const d = start(); // one joins
    await d.ready();
    await sleep(2_000);
    await produce(kafka, topic, events.slice(2 * third));
    await waitForSessions(admin, database, expected, 180_000, () => a.output + c.output + d.output);
  });

  it('a worker killed with SIGKILL mid-batch and restarted loses and doubles nothing', async () => {
    const { topic, database, start } = await setUp('sigkill');
    const events = traffic(1_500, 13);
    const expected = await recomputeRecords(events);
    await produce(kafka, topic, events);
    const first = start();
    await waitFor(async () => (await countRows(database)) > 0, 60_000, () => first.output);
    await first.kill();
    const second = start();
    await waitForSessions(admin, database, expected, 180_000, () => second.output);
  });

  it('stopped with SIGTERM, sends its last session rows before it exits (none left pending)', async () => {
    const { topic, database, env, redisPrefix } = await setUp('sigterm');
    // A slow ClickHouse: every answer comes 500 ms late, so the rows of the last commit are
    // still on their way when the last batch is done.
    const target = new URL(env.CLICKHOUSE_URL as string);
    const proxy = new TcpProxy(target.hostname, Number(target.port), 500);
    await proxy.open();
    const worker = new WorkerProcess({ ...env, CLICKHOUSE_URL: `http://127.0.0.1:${proxy.port}` });
    workers.push(worker);
    await worker.ready();
    await produce(kafka, topic, traffic(300, 18));
    await waitFor(async () => (await countRows(database)) > 0, 60_000, () => worker.output);
    expect(await worker.stop()).toBe(0);
    await proxy.cut();
    // Session rows go to ClickHouse while the next batch is read; a clean stop waits for them,
    // so no outbox entry is left for the partition's next owner to send.
    const redis = createRedis();
    try {
      for (let partition = 0; partition < 4; partition++) {
        expect([partition, await redis.hlen(new PartitionKeys(redisPrefix, topic, partition).outbox)]).toEqual([partition, 0]);
      }
    } finally {
      await redis.quit();
    }
  });

  it('the same events delivered twice (produced twice, then replayed from offset 0) change nothing', async () => {
    const { topic, database, env, start } = await setUp('twice');
    const events = traffic(800, 14);
    const expected = await recomputeRecords(events);
    await produce(kafka, topic, events);
    await produce(kafka, topic, events);
    const worker = start();
    await waitForSessions(admin, database, expected, 120_000, () => worker.output);
    expect(await worker.stop()).toBe(0);
    const rowsBefore = await countRows(database);

    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    await kafkaAdmin.resetOffsets({ groupId: env.KAFKA_GROUP_ID as string, topic, earliest: true });
    await kafkaAdmin.disconnect();
    const replay = start();
    await waitFor(async () => (await groupLag(kafka, env.KAFKA_GROUP_ID as string, topic)) === 0, 60_000, () => replay.output);
    await sleep(2_000);
    expect(await countRows(database)).toBe(rowsBefore);
    await waitForSessions(admin, database, expected, 30_000, () => replay.output);
  });

  it('closes a live session within 5 s after T without further events', async () => {
    const { topic, database, start } = await setUp('live', { timeoutMinutes: 0.1, closeDelaySeconds: 1 });
    const worker = start();
    const now = Date.now();
    const live: RawEvent[] = [
      { event_id: 'l1', type: 'page_view', timestamp: now, anonymous_id: 'live-user', page: { path: '/a' } },
      { event_id: 'l2', type: 'page_view', timestamp: now + 1_000, anonymous_id: 'live-user', page: { path: '/b' } },
    ];
    await produce(kafka, topic, live);
    const T = 6_000;
    let open: Awaited<ReturnType<typeof currentSessions>> = [];
    await waitFor(async () => (open = await currentSessions(admin, database)).length === 1, 30_000, () => worker.output);
    let closedAt = 0;
    await waitFor(
      async () => {
        const rows = await currentSessions(admin, database);
        if (rows.length === 1 && rows[0]?.is_open === 0) closedAt = Date.now();
        return closedAt > 0;
      },
      30_000,
      () => worker.output,
    );
    const lastEvent = now + 1_000;
    expect(closedAt - (lastEvent + T)).toBeLessThan(5_000);
    const [session] = await currentSessions(admin, database);
    expect(session).toMatchObject({ events: 2, views: 2, entry_page: '/a', exit_page: '/b', is_open: 0 });
    expect(open.length).toBe(1);
  });

  it('sends bad messages to the dead-letter topic with the reason and leaves the good ones unaffected', async () => {
    const { topic, database, env, start } = await setUp('dlq');
    const good = traffic(300, 15);
    const bad = [
      { key: 'bad-1', value: 'not json at all' },
      { key: 'bad-2', value: JSON.stringify({ event_id: 'x', type: 'page_view', timestamp: '2024-05-01T00:00:00' , anonymous_id: 'a' }) },
      { key: 'bad-3', value: JSON.stringify({ event_id: 'y', type: 'page_view', timestamp: 1714521600000 }) },
    ];
    const mixed: Array<RawEvent | { key: string; value: string }> = [...good];
    bad.forEach((b, i) => mixed.splice(Math.floor(((i + 1) * good.length) / 4), 0, b));
    await produce(kafka, topic, mixed);
    const worker = start();
    await waitForSessions(admin, database, await recomputeRecords(good), 120_000, () => worker.output);

    const dead = await readTopic(kafka, env.KAFKA_DEAD_LETTER_TOPIC as string, bad.length);
    expect(dead.map((m) => m.value).sort()).toEqual(bad.map((b) => b.value).sort());
    for (const m of dead) {
      expect(m.headers['x-sessionizer-source-topic']).toBe(topic);
      expect(m.headers['x-sessionizer-error']).toBeTruthy();
      expect(Number(m.headers['x-sessionizer-source-offset'])).toBeGreaterThanOrEqual(0);
    }
    const reasons = Object.fromEntries(dead.map((m) => [m.key, m.headers['x-sessionizer-error']]));
    expect(reasons['bad-1']).toMatch(/not valid JSON/);
    expect(reasons['bad-2']).toMatch(/^timestamp:/);
    expect(reasons['bad-3']).toMatch(/anonymous_id/);
  });

  // A TCP proxy in front of the service plays the outage; the shared server stays up.
  it.each([
    { service: 'ClickHouse', variable: 'CLICKHOUSE_URL', scheme: 'http', seed: 16 },
    { service: 'Redis', variable: 'REDIS_URL', scheme: 'redis', seed: 17 },
  ])('pauses while $service is unreachable (no commits) and resumes without loss', async ({ service, variable, scheme, seed }) => {
    const { topic, database, env } = await setUp(`${service}_down`);
    const target = new URL(env[variable] as string);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
    await proxy.open();
    const events = traffic(600, seed);
    const half = Math.floor(events.length / 2);
    const worker = new WorkerProcess({ ...env, [variable]: `${scheme}://127.0.0.1:${proxy.port}` });
    workers.push(worker);
    await worker.ready();
    await produce(kafka, topic, events.slice(0, half));
    await waitFor(async () => (await groupLag(kafka, env.KAFKA_GROUP_ID as string, topic)) === 0, 60_000, () => worker.output);
    await proxy.cut();
    await produce(kafka, topic, events.slice(half));
    await sleep(5_000);
    // Nothing of the second half is committed while the service is away, and the worker waits.
    expect(await groupLag(kafka, env.KAFKA_GROUP_ID as string, topic)).toBe(events.length - half);
    expect(worker.child.exitCode).toBeNull();
    await proxy.open();
    await waitForSessions(admin, database, await recomputeRecords(events), 120_000, () => worker.output);
    expect(await groupLag(kafka, env.KAFKA_GROUP_ID as string, topic)).toBe(0);
    await proxy.cut();
  });

  it('numbers a returning user right after their sessions were forgotten, from an idle record', async () => {
    const { topic, database, redisPrefix, start } = await setUp('returning', { partitions: 1, timeoutMinutes: 1, latenessMinutes: 0 });
    const worker = start();
    const t0 = Date.parse('2024-06-01T10:00:00Z');
    const ev = (id: string, key: string, at: number): RawEvent => ({ event_id: id, type: 'page_view', timestamp: at, anonymous_id: key, page: { path: `/${id}` } });
    const first = [ev('r1', 'returning-user', t0), ev('r2', 'returning-user', t0 + 5_000)];
    // Another visitor moves the partition's event time far ahead: the first visit is forgotten.
    const later = [ev('o1', 'other-user', t0 + 3_600_000)];
    const back = [ev('r3', 'returning-user', t0 + 7_200_000)];
    await produce(kafka, topic, [...first, ...later]);
    const redis = defineStateCommands(createRedis());
    const keys = new PartitionKeys(redisPrefix, topic, 0);
    const storedOf = async () => (await readStoredValues(redis, keys, ['returning-user']))[0];
    await waitFor(async () => (await storedOf())?.where === 'idle', 60_000, () => worker.output);
    // No key of its own: a record of a few bytes in one of the partition's idle buckets.
    expect(await redis.exists(keys.user('returning-user'))).toBe(0);
    const stored = (await storedOf()) as StoredValue;
    const compact = storedState('returning-user', stored, Date.now()) as KeyState;
    expect(compact).toMatchObject({ sessions: [], forgottenCount: 1, forgottenLastId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(decodeIdleRecord(stored.bytes).expiresAtMinute * 60_000).toBeGreaterThan(Date.now() + 300 * 86_400_000);
    const buckets = await redis.keys(`${keys.idle}*`);
    let bucketBytes = 0;
    let records = 0;
    for (const bucket of buckets) {
      bucketBytes += Number(await redis.call('MEMORY', 'USAGE', bucket, 'SAMPLES', '0'));
      records += await redis.hlen(bucket);
    }

    await produce(kafka, topic, back);
    const all = [...first, ...later, ...back];
    const expected = await recomputeRecords(all, 1);
    await waitForSessions(admin, database, expected, 60_000, () => worker.output);
    const returning = expected.filter((s) => s.user_key === 'returning-user');
    expect(returning.map((s) => s.session_number)).toEqual([1, 2]);
    expect(returning[1]?.previous_session_id).toBe(returning[0]?.session_id);
    expect(returning[0]?.session_id).toBe(compact.forgottenLastId);
    // Back with a session: a state key again, and the record is gone.
    await waitFor(async () => (await storedOf())?.where === 'key', 30_000, () => worker.output);
    expect(await redis.readIdleBuffer(keys.meta, keys.idle, 'returning-user')).toEqual([null]);
    console.log(`redis bytes of the idle buckets per record: ${Math.round(bucketBytes / records)} (${records} record(s), ${buckets.length} bucket(s))`);
    await redis.quit();
  });

  it('exits non-zero instead of spinning when it cannot work (no schema in ClickHouse)', async () => {
    const { topic, env } = await setUp('crashloop');
    await produce(kafka, topic, traffic(20, 18));
    const worker = new WorkerProcess({ ...env, CLICKHOUSE_DATABASE: uniqueName('missing_db') });
    workers.push(worker);
    let timer: NodeJS.Timeout | undefined;
    const tooLong = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 120_000)));
    const code = await Promise.race([worker.exited, tooLong]);
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(worker.output).toMatch(/worker gave up/);
  });

  async function countRows(database: string): Promise<number> {
    const result = await admin.query({ query: `SELECT count() AS n FROM ${database}.sessions`, format: 'JSONEachRow' });
    const [row] = (await result.json()) as Array<{ n: string }>;
    return Number(row?.n ?? 0);
  }
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
