/**
 * Smoke test of the test services themselves: whichever way global setup found them
 * (environment, Docker or local servers, see docs/services.md), each one does what the
 * project needs from it, through the project's own client libraries.
 */
import { ClickHouseError } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { Consumer, Kafka } from 'kafkajs';
import {
  createKafka,
  createRedis,
  deleteRedisKeys,
  newRedisPrefix,
  uniqueName,
  useTestDatabase,
} from '../support';

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Kafka (kafkajs)', () => {
  const MESSAGES = 10_000;
  const PARTITIONS = 4;
  let kafka: Kafka;
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    kafka = await createKafka(uniqueName('smoke'));
  });
  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.disconnect()));
  });

  it('a two-member consumer group reads 10,000 keyed messages exactly once and commits its offsets', async () => {
    const topic = uniqueName('smoke_topic');
    const groupId = uniqueName('smoke_group');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });

      // Both members join, and the group settles on two partitions each, before anything is
      // produced: a rebalance in the middle could legitimately hand uncommitted messages to the
      // other member a second time, and this test is about exactly-once reading.
      const deliveries = new Map<number, number>();
      const valuesByKey = new Map<string, number[]>();
      const perMember = [0, 0];
      const assignments: number[][] = [[], []];
      for (const member of [0, 1]) {
        // kafkajs heartbeats between fetches, and a fetch on an idle topic waits maxWaitTimeInMs
        // (5 s by default): a short wait makes the group settle in well under a second.
        const consumer = kafka.consumer({ groupId, heartbeatInterval: 500, sessionTimeout: 10_000, maxWaitTimeInMs: 250 });
        consumers.push(consumer);
        consumer.on(consumer.events.GROUP_JOIN, (event) => {
          assignments[member] = event.payload.memberAssignment[topic] ?? [];
        });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            const value = Number(message.value?.toString());
            const key = message.key?.toString() ?? '';
            deliveries.set(value, (deliveries.get(value) ?? 0) + 1);
            valuesByKey.set(key, [...(valuesByKey.get(key) ?? []), value]);
            perMember[member] = (perMember[member] ?? 0) + 1;
          },
        });
      }
      await waitFor('both members to hold two partitions', () => assignments.every((a) => a.length === PARTITIONS / 2), 30_000);
      expect(new Set(assignments.flat()).size).toBe(PARTITIONS);

      const producer = kafka.producer();
      await producer.connect();
      try {
        for (let start = 0; start < MESSAGES; start += 1_000) {
          const messages = Array.from({ length: 1_000 }, (_, i) => ({ key: `key-${(start + i) % 100}`, value: String(start + i) }));
          await producer.send({ topic, messages, acks: -1 });
        }
      } finally {
        await producer.disconnect();
      }

      await waitFor(`${MESSAGES} messages`, () => deliveries.size === MESSAGES, 60_000);
      // Disconnecting commits the last offsets and leaves the group.
      await Promise.all(consumers.splice(0).map((consumer) => consumer.disconnect()));

      expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
      expect(perMember.every((count) => count > 0)).toBe(true);
      // One key, one partition: each key's messages arrive in the order they were produced.
      for (const values of valuesByKey.values()) expect(values).toEqual([...values].sort((a, b) => a - b));

      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const committedByPartition = Object.fromEntries(committed?.partitions.map((p) => [p.partition, p.offset]) ?? []);
      expect(ends.reduce((sum, p) => sum + Number(p.high), 0)).toBe(MESSAGES);
      for (const end of ends) expect(committedByPartition[end.partition]).toBe(end.high);

      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await admin.disconnect();
    }
  }, 120_000);
});

describe('Redis (ioredis)', () => {
  interface CappedCounter {
    /** INCRBY capped at `cap`, refreshing the key's TTL; returns the new value. */
    cappedIncr(key: string, by: number, cap: number, ttlMs: number): Promise<number>;
  }
  let redis: Redis & CappedCounter;
  const prefix = newRedisPrefix('smoke');

  beforeAll(() => {
    redis = createRedis() as Redis & CappedCounter;
    redis.defineCommand('cappedIncr', {
      numberOfKeys: 1,
      lua: `
        local value = redis.call('INCRBY', KEYS[1], ARGV[1])
        local cap = tonumber(ARGV[2])
        if value > cap then
          redis.call('SET', KEYS[1], cap)
          value = cap
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return value`,
    });
  });
  afterAll(async () => {
    await deleteRedisKeys(redis, prefix);
    await redis.quit();
  });

  it('runs a Lua script defined with defineCommand', async () => {
    const key = `${prefix}counter`;
    expect(await redis.cappedIncr(key, 3, 5, 60_000)).toBe(3);
    expect(await redis.cappedIncr(key, 3, 5, 60_000)).toBe(5);
    expect(await redis.get(key)).toBe('5');
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});

describe('ClickHouse (@clickhouse/client)', () => {
  const db = useTestDatabase('smoke');

  it('VersionedCollapsingMergeTree with DateTime64: JSONEachRow in, query parameters, FINAL collapses a cancelled row', async () => {
    const client = db.client;
    await client.command({
      query: `CREATE TABLE sessions (
          session_id String,
          started_at DateTime64(3, 'UTC'),
          events UInt32,
          sign Int8,
          version UInt64
        ) ENGINE = VersionedCollapsingMergeTree(sign, version)
        ORDER BY session_id`,
    });
    const a = { session_id: 'a', started_at: '2024-05-01 12:34:56.789', events: 3, version: 1 };
    const b = { session_id: 'b', started_at: '2024-05-01 23:59:59.001', events: 7, version: 1 };
    await client.insert({ table: 'sessions', values: [{ ...a, sign: 1 }, { ...b, sign: 1 }], format: 'JSONEachRow' });
    // Cancel `a`: the same row with sign -1 and the same version.
    await client.insert({ table: 'sessions', values: [{ ...a, sign: -1 }], format: 'JSONEachRow' });

    const byId = await client.query({
      query: 'SELECT session_id, started_at, events FROM sessions WHERE session_id = {id:String} AND sign = 1',
      query_params: { id: 'b' },
      format: 'JSONEachRow',
    });
    expect(await byId.json()).toEqual([{ session_id: 'b', started_at: '2024-05-01 23:59:59.001', events: 7 }]);

    const final = await client.query({ query: 'SELECT session_id FROM sessions FINAL ORDER BY session_id', format: 'JSONEachRow' });
    expect(await final.json()).toEqual([{ session_id: 'b' }]);
  });

  it('passes query parameters through with their escaping intact', async () => {
    const text = "it's a \\ backslash,\ta tab and\na newline";
    const result = await db.client.query({
      query: 'SELECT {text:String} AS text, {ids:Array(String)} AS ids',
      query_params: { text, ids: ["o'ne", 'two\\'] },
      format: 'JSONEachRow',
    });
    expect(await result.json()).toEqual([{ text, ids: ["o'ne", 'two\\'] }]);
  });

  it('rejects with the server exception code when a query fails', async () => {
    const missing = db.client.query({ query: 'SELECT * FROM no_such_table', format: 'JSONEachRow' });
    await expect(missing).rejects.toBeInstanceOf(ClickHouseError);
    await expect(missing).rejects.toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    await expect(db.client.command({ query: 'SELEC 1' })).rejects.toMatchObject({ code: '62', type: 'SYNTAX_ERROR' });
    // One statement per request, as on a real server.
    await expect(db.client.command({ query: 'SELECT 1; SELECT 2' })).rejects.toMatchObject({ code: '62' });
  });

  it('feeds a target table through CREATE MATERIALIZED VIEW ... TO', async () => {
    const client = db.client;
    await client.command({ query: 'CREATE TABLE raw_events (session_id String, n UInt32) ENGINE = MergeTree ORDER BY session_id' });
    await client.command({
      query: 'CREATE TABLE events_per_session (session_id String, total UInt64) ENGINE = SummingMergeTree ORDER BY session_id',
    });
    await client.command({
      query: `CREATE MATERIALIZED VIEW events_per_session_mv TO events_per_session AS
        SELECT session_id, sum(n) AS total FROM raw_events GROUP BY session_id`,
    });
    await client.insert({
      table: 'raw_events',
      values: [{ session_id: 'a', n: 2 }, { session_id: 'a', n: 3 }, { session_id: 'b', n: 1 }],
      format: 'JSONEachRow',
    });
    const result = await client.query({
      query: 'SELECT session_id, sum(total) AS total FROM events_per_session GROUP BY session_id ORDER BY session_id',
      format: 'JSONEachRow',
    });
    // UInt64 comes back as a number or a string depending on the server's JSON defaults.
    const rows = (await result.json<{ session_id: string; total: number | string }>()).map((r) => ({ ...r, total: Number(r.total) }));
    expect(rows).toEqual([{ session_id: 'a', total: 5 }, { session_id: 'b', total: 1 }]);
  });

  it('deduplicates a repeated insert with insert_deduplication_token (non_replicated_deduplication_window)', async () => {
    const client = db.client;
    await client.command({
      query: `CREATE TABLE batches (id String) ENGINE = MergeTree ORDER BY id
        SETTINGS non_replicated_deduplication_window = 100`,
    });
    const insert = (token: string, ids: string[]): Promise<unknown> =>
      client.insert({
        table: 'batches',
        values: ids.map((id) => ({ id })),
        format: 'JSONEachRow',
        // Synchronous insert: recent servers default to async inserts, which deduplicate differently.
        clickhouse_settings: { insert_deduplication_token: token, async_insert: 0 },
      });
    await insert('batch-1', ['x', 'y']);
    await insert('batch-1', ['x', 'y']); // a retry of the same batch
    await insert('batch-2', ['z']);
    const result = await client.query({ query: 'SELECT id FROM batches ORDER BY id', format: 'JSONEachRow' });
    expect(await result.json()).toEqual([{ id: 'x' }, { id: 'y' }, { id: 'z' }]);
  });
});
