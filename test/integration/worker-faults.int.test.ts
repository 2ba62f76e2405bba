/**
 * The worker off the happy path, against real Kafka, Redis and ClickHouse:
 *   - a topic re-created under the same name while Redis keeps the old log's state: the
 *     documented stop (exit 1 naming topic, partition and offsets), or, with
 *     STATE_LOG_MISMATCH=reset, the new log sessionized from its beginning;
 *   - an invalid message too large for the dead-letter topic: replaced there by a record of
 *     where it is, and the partition goes on.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import { readTopic } from '../support/read-topic';
import { WorkerProcess, currentSessions, groupLag, produce, recomputeRecords, waitFor, waitForSessions, withoutOpenFlag, workerEnv } from '../support/worker-harness';

jest.setTimeout(240_000);

function traffic(users: number, seed: number, prefix: string): RawEvent[] {
  return [...generateTraffic({ users, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 6 * 3_600_000, duplicateRate: 0, disorderMs: 0, seed, idPrefix: prefix })];
}

let kafka: Kafka;
let admin: ClickHouseClient;
const workers: WorkerProcess[] = [];
const redisPrefixes: string[] = [];

beforeAll(async () => {
  kafka = await createKafka('worker-faults-test');
  admin = await createClickHouseClient();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.kill()));
});
afterAll(async () => {
  await admin.close();
  const redis = createRedis();
  for (const prefix of redisPrefixes) await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
});

async function createTopic(topic: string, partitions: number, configEntries: Array<{ name: string; value: string }> = []): Promise<void> {
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  try {
    // Right after a deletion the broker may still refuse the name for a moment.
    await waitFor(
      async () => kafkaAdmin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries }], waitForLeaders: true }).then(
        () => true,
        () => false,
      ),
      60_000,
    );
  } finally {
    await kafkaAdmin.disconnect();
  }
}

async function deleteTopic(topic: string): Promise<void> {
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  try {
    await kafkaAdmin.deleteTopics({ topics: [topic], timeout: 30_000 });
    await waitFor(async () => !(await kafkaAdmin.listTopics()).includes(topic), 60_000);
  } finally {
    await kafkaAdmin.disconnect();
  }
}

async function setUp(name: string, partitions: number, extra: Record<string, string> = {}) {
  const topic = uniqueName(name);
  const database = uniqueName(name);
  await createTopic(topic, partitions);
  await migrate(admin, { database, cluster: '' });
  const redisPrefix = newRedisPrefix(name);
  redisPrefixes.push(redisPrefix);
  const env = { ...(await workerEnv({ topic, groupId: uniqueName(`${name}_group`), redisPrefix, database })), ...extra };
  const start = (more: Record<string, string> = {}) => {
    const w = new WorkerProcess({ ...env, ...more });
    workers.push(w);
    return w;
  };
  return { topic, database, env, start, redisPrefix };
}

/** Every key under `prefix`, read in one transaction: what a copy of Redis taken now holds. */
async function snapshotRedis(prefix: string): Promise<Map<string, Buffer>> {
  const redis = createRedis();
  try {
    const keys = await redis.keys(`${prefix}*`);
    const multi = redis.multi();
    for (const key of keys) multi.dumpBuffer(key);
    const replies = (await multi.exec()) ?? [];
    const dump = new Map<string, Buffer>();
    keys.forEach((key, i) => {
      const value = replies[i]?.[1] as Buffer | null;
      if (value) dump.set(key, value);
    });
    return dump;
  } finally {
    await redis.quit();
  }
}

/** Puts every key under `prefix` back as in `dump`, in one transaction (like a restart from a copy). */
async function restoreRedis(prefix: string, dump: Map<string, Buffer>): Promise<void> {
  const redis = createRedis();
  try {
    const now = await redis.keys(`${prefix}*`);
    const multi = redis.multi();
    if (now.length > 0) multi.del(...now);
    for (const [key, value] of dump) multi.restore(key, 0, value, 'REPLACE');
    await multi.exec();
  } finally {
    await redis.quit();
  }
}

async function signedTotals(database: string): Promise<{ sessions: number; events: number }> {
  const result = await admin.query({ query: `SELECT sum(sign) AS s, sum(sign * events) AS e FROM ${database}.sessions`, format: 'JSONEachRow' });
  const [row] = (await result.json()) as Array<{ s: string; e: string }>;
  return { sessions: Number(row?.s), events: Number(row?.e) };
}

it('a topic re-created with the state kept stops the worker with a clear error, or with reset starts the new log afresh', async () => {
  const { topic, database, start } = await setUp('recreated', 2);
  const oldLog = traffic(60, 21, 'old-');
  await produce(kafka, topic, oldLog);
  const first = start();
  const expectedOld = await recomputeRecords(oldLog);
  await waitForSessions(admin, database, expectedOld, 120_000, () => first.output);
  expect(await first.stop()).toBe(0);

  await deleteTopic(topic);
  await createTopic(topic, 2);
  const newLog = traffic(90, 22, 'new-'); // longer: the state's offsets are inside the new log
  await produce(kafka, topic, newLog);

  const stopped = start();
  expect(await stopped.exited).toBe(1);
  expect(stopped.output).toMatch(new RegExp(`partition ${topic}\\[[01]\\]: the worker state in Redis \\(applied offset \\d+\\) belongs to another Kafka log`));
  expect(stopped.output).toContain('STATE_LOG_MISMATCH=reset');

  const resetting = start({ STATE_LOG_MISMATCH: 'reset' });
  const expectedNew = await recomputeRecords(newLog);
  // The old log's sessions stay (they happened); the new log's are all there, counted once.
  await waitFor(
    async () => {
      const rows = withoutOpenFlag(await currentSessions(admin, database)).filter((r) => r.user_key.startsWith('new-'));
      return rows.length === expectedNew.length && JSON.stringify(rows) === JSON.stringify(expectedNew);
    },
    120_000,
    () => resetting.output.slice(-3000),
  );
  expect(resetting.output).toContain('state belongs to another log: resetting it');
  expect(await resetting.stop()).toBe(0);
});

it('an invalid message too large for the dead-letter topic is replaced by a record of it and the partition goes on', async () => {
  const { topic, database, env, start } = await setUp('hugedlq', 1);
  // The event topic takes large messages; the dead-letter topic (created by the worker) has the
  // broker's default limit of about 1 MB.
  await deleteTopic(topic);
  await createTopic(topic, 1, [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }]);
  const good = traffic(40, 23, 'big-');
  const huge = { key: 'huge', value: `{"event_id": "${'x'.repeat(1_200_000)}"}` };
  const small = { key: 'small', value: 'not json' };
  const half = Math.floor(good.length / 2);
  await produce(kafka, topic, [...good.slice(0, half), huge, small, ...good.slice(half)]);
  const worker = start();
  await waitForSessions(admin, database, await recomputeRecords(good), 120_000, () => worker.output);

  const dead = await readTopic(kafka, env.KAFKA_DEAD_LETTER_TOPIC as string, 2);
  expect(dead).toHaveLength(2);
  const replaced = dead.find((m) => m.key === 'huge');
  expect(replaced?.headers['x-sessionizer-replaced-bytes']).toBeDefined();
  expect(JSON.parse(replaced?.value ?? '{}')).toMatchObject({ replaced: true, source: { topic, partition: 0 } });
  expect(dead.find((m) => m.key === 'small')?.value).toBe('not json');
  expect(worker.output).not.toContain('MESSAGE_TOO_LARGE');
  expect(await worker.stop()).toBe(0);
});

it('Redis restored mid-stream to a copy taken seconds earlier: two workers lose nothing and count nothing twice', async () => {
  const { topic, database, env, start, redisPrefix } = await setUp('restored', 4);
  // Half the visitors in a second site: the repair reads stored rows and logs its writes per
  // (site, user_key), whose key for a site other than default holds a NUL.
  const events = traffic(400, 24, 'rs-').map((e) => (/[13579]$/.test(String(e.anonymous_id ?? e.user_id)) ? { ...e, site: 'shop' } : e));
  expect(new Set(events.map((e) => e.site ?? 'default'))).toEqual(new Set(['default', 'shop']));
  const expected = await recomputeRecords(events);
  const groupId = env.KAFKA_GROUP_ID as string;
  const [a, b] = [start(), start()];
  await Promise.all([a.ready(), b.ready()]);
  const third = Math.floor(events.length / 3);
  await produce(kafka, topic, events.slice(0, third));
  await waitFor(async () => (await groupLag(kafka, groupId, topic)) === 0, 120_000, () => a.output + b.output);
  const older = await snapshotRedis(`{${redisPrefix}`);
  await produce(kafka, topic, events.slice(third, 2 * third));
  await waitFor(async () => (await groupLag(kafka, groupId, topic)) === 0, 120_000, () => a.output + b.output);
  await restoreRedis(`{${redisPrefix}`, older); // the commits of the second third are lost
  await produce(kafka, topic, events.slice(2 * third));

  await waitForSessions(admin, database, expected, 180_000, () => a.output + b.output);
  expect(await signedTotals(database)).toEqual({ sessions: expected.length, events: expected.reduce((n, r) => n + r.events, 0) });
  expect(a.output + b.output).toContain('the Redis state lost recent writes');
  expect(a.output + b.output).toContain('session rows of the lost state commits corrected');
});

it('a topic deleted and re-created under a running pool (state kept, STATE_LOG_MISMATCH=reset): the new log is counted once', async () => {
  const { topic, database, start } = await setUp('recreatedlive', 2, { STATE_LOG_MISMATCH: 'reset' });
  const oldLog = traffic(60, 25, 'old2-');
  const expectedOld = await recomputeRecords(oldLog);
  const first = [start(), start()];
  await Promise.all(first.map((w) => w.ready()));
  await produce(kafka, topic, oldLog);
  await waitForSessions(admin, database, expectedOld, 120_000, () => first.map((w) => w.output).join(''));

  await deleteTopic(topic);
  await createTopic(topic, 2);
  const newLog = traffic(90, 26, 'new2-');
  await produce(kafka, topic, newLog);
  // The pool keeps running; a worker that exits (kafkajs may give up on a topic deleted under
  // its consumer) is started again, as an orchestrator would.
  const pool = [...first];
  const expectedNew = await recomputeRecords(newLog);
  await waitFor(
    async () => {
      for (const [i, w] of pool.entries()) if (w.child.exitCode !== null) pool[i] = start();
      const rows = withoutOpenFlag(await currentSessions(admin, database)).filter((r) => r.user_key.startsWith('new2-'));
      return rows.length === expectedNew.length && JSON.stringify(rows) === JSON.stringify(expectedNew);
    },
    150_000,
    () => pool.map((w) => w.output.slice(-2000)).join('\n'),
  );
  const second = pool.filter((w) => !first.includes(w));
  expect(first.map((w) => w.output).join('') + second.map((w) => w.output).join('')).toContain('state belongs to another log: resetting it');
  expect(await signedTotals(database)).toMatchObject({ sessions: expectedNew.length + expectedOld.length });
});
