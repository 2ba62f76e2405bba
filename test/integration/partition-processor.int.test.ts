/**
 * PartitionProcessor against real Redis and ClickHouse, with one fault injected into the session
 * insert: a commit's rows go to ClickHouse in the background, and when that flush fails for good
 * (an error no retry fixes), the next commit must send the pending outbox entry again first —
 * not stall on the old error, and not leave the rows behind.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { eventRowOf } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { ClickHouseSink, type SessionValues } from '../../src/clickhouse/session-sink';
import { StoredSessions } from '../../src/clickhouse/stored-sessions';
import { createLogger } from '../../src/observability/logger';
import { WorkerMetrics } from '../../src/observability/metrics';
import { PartitionStateStore } from '../../src/state/partition-state-store';
import { defineStateCommands } from '../../src/state/script-loader';
import type { IncomingMessage } from '../../src/worker/batch-plan';
import { PartitionProcessor } from '../../src/worker/partition-processor';
import { createRedis, deleteRedisKeys, newRedisPrefix, useTestDatabase } from '../support';
import { queryRows, testClient } from './clickhouse-fixtures';

const db = useTestDatabase('processor');
let client: ClickHouseClient;
const redis = defineStateCommands(createRedis());
const prefix = newRedisPrefix('processor');

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
});

afterAll(async () => {
  await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
  await client.close();
});

function messages(user: string, fromOffset: number, count: number): IncomingMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    offset: String(fromOffset + i),
    key: Buffer.from(user),
    value: Buffer.from(JSON.stringify({ event_id: `${user}-${i}`, type: 'page_view', timestamp: Date.UTC(2024, 4, 1, 10, i), anonymous_id: user, page: { path: `/${i}` } })),
  }));
}

it('sends a failed background flush again before the next commit', async () => {
  const sink = new ClickHouseSink(client, db.name);
  let failures = 1;
  const inserted: string[] = [];
  const faulty = {
    eventBatch: sink.eventBatch.bind(sink),
    insertEventBatch: sink.insertEventBatch.bind(sink),
    async insertSessions(rows: readonly SessionValues[], token: string): Promise<void> {
      if (failures-- > 0) throw Object.assign(new Error('injected: table is gone'), { code: '60' });
      inserted.push(token);
      await sink.insertSessions(rows, token);
    },
  };
  const deadLettered: unknown[] = [];
  const { store, processor } = newProcessor(faulty, 0, Date.now, deadLettered);
  await processor.claim();

  await processor.handleBatch(messages('alice', 0, 3), '1000'); // commit 1; its flush fails in the background
  await processor.drain();
  expect(inserted).toEqual([]);
  expect(await store.pendingOutbox()).toHaveLength(1);

  await processor.handleBatch(messages('bob', 3, 2), '1000'); // entry 1 again, then commit 2
  await processor.drain();
  expect(inserted).toEqual([expect.stringMatching(/^events:0:[0-9a-f]+:outbox:1:[0-9a-f]{16}$/), expect.stringMatching(/^events:0:[0-9a-f]+:outbox:2:[0-9a-f]{16}$/)]);
  expect(await store.pendingOutbox()).toEqual([]);
  const rows = await queryRows<{ user_key: string; events: number }>(client, `SELECT user_key, events FROM ${db.name}.sessions FINAL WHERE sign = 1 ORDER BY user_key`);
  expect(rows).toEqual([
    { user_key: 'alice', events: 3 },
    { user_key: 'bob', events: 2 },
  ]);
  expect(deadLettered).toEqual([]);
});

type Sink = ConstructorParameters<typeof PartitionProcessor>[2]['sink'];

/** A processor of partition `partition` of `events`, writing through `sink`; rejected messages go to `deadLettered`. */
function newProcessor(sink: Sink, partition: number, now: () => number, deadLettered: unknown[] = []): { store: PartitionStateStore; processor: PartitionProcessor } {
  const store = new PartitionStateStore(redis, prefix, 'events', partition, { activeSeconds: 3600, idleSeconds: 3600 });
  const processor = new PartitionProcessor('events', partition, {
    store,
    sink,
    kafkaLog: { bounds: async () => ({ low: 0n, high: 1000n, committed: -1n }), topicId: async () => null },
    storedSessions: new StoredSessions(client, db.name),
    onLogMismatch: 'fail',
    deadLetter: {
      plan: async (_topic, _partition, rejected) => {
        deadLettered.push(...rejected);
        return [];
      },
      send: async () => undefined,
    },
    eventRow: eventRowOf,
    engine: { timeoutMs: 30 * 60_000, latenessMs: 3_600_000 },
    closeDelayMs: 2_000,
    maxClockSkewMs: 5 * 60_000,
    now,
    metrics: new WorkerMetrics(),
    log: createLogger('silent'),
  });
  return { store, processor };
}

it('tells how long a batch has been waiting on its sink, and 0 once it is done', async () => {
  const sink = new ClickHouseSink(client, db.name);
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const slow = {
    eventBatch: sink.eventBatch.bind(sink),
    insertSessions: sink.insertSessions.bind(sink),
    async insertEventBatch(...args: Parameters<ClickHouseSink['insertEventBatch']>): Promise<void> {
      await held; // ClickHouse not answering
      await sink.insertEventBatch(...args);
    },
  };
  let clock = Date.parse('2024-05-01T12:00:00Z');
  const { processor } = newProcessor(slow, 1, () => clock);
  await processor.claim();
  expect(processor.busyForMs(clock)).toBe(0);
  const batch = processor.handleBatch(messages('carol', 0, 2), '1000');
  clock += 4_000;
  expect(processor.busyForMs(clock)).toBe(4_000);
  release();
  await batch;
  await processor.drain();
  expect(processor.busy).toBe(false);
  expect(processor.busyForMs(clock + 1_000)).toBe(0);
});
