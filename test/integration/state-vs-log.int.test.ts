/**
 * The partition's Redis state and the Kafka log it was made from must never disagree silently.
 * PartitionProcessor against a real Redis and ClickHouse; the log's bounds are given per test
 * (what Kafka would answer), the messages are what a consumer would be handed after its seek.
 *
 *   - Redis restored from an older copy (DUMP/RESTORE of the partition's keys, as an AOF copy
 *     taken seconds earlier would leave it): the next commit is refused as diverged, never read
 *     as success; a new claim reads again from the state's offset and nothing is lost;
 *   - a state ahead of the log's end, or whose last message is not the one at its offset in the
 *     log (a re-created topic): the documented stop, or a reset when the operator chose it.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { eventRowOf } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { ClickHouseSink, type SessionValues } from '../../src/clickhouse/session-sink';
import { StoredSessions } from '../../src/clickhouse/stored-sessions';
import { StateDivergedError, StateLogMismatchError } from '../../src/errors';
import { createLogger } from '../../src/observability/logger';
import { WorkerMetrics } from '../../src/observability/metrics';
import { PartitionStateStore } from '../../src/state/partition-state-store';
import { defineStateCommands } from '../../src/state/script-loader';
import type { IncomingMessage } from '../../src/worker/batch-plan';
import type { LogBounds } from '../../src/worker/log-position';
import { PartitionProcessor, type LogMismatchPolicy } from '../../src/worker/partition-processor';
import { createRedis, deleteRedisKeys, newRedisPrefix, useTestDatabase } from '../support';
import { queryRows, testClient } from './clickhouse-fixtures';

jest.setTimeout(120_000);

const db = useTestDatabase('statelog');
let client: ClickHouseClient;
const redis = defineStateCommands(createRedis());
const prefixes: string[] = [];

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
  await client.close();
});

/** One page view per offset; `tag` makes a different log with the same offsets. */
function log(user: string, from: number, to: number, tag = 'a'): IncomingMessage[] {
  const out: IncomingMessage[] = [];
  for (let offset = from; offset <= to; offset++) {
    out.push({
      offset: String(offset),
      key: Buffer.from(user),
      value: Buffer.from(
        JSON.stringify({ event_id: `${tag}-${offset}`, type: 'page_view', timestamp: Date.UTC(2024, 4, 1, 10, offset), anonymous_id: user, page: { path: `/${offset}` } }),
      ),
    });
  }
  return out;
}

interface Setup {
  processor: () => PartitionProcessor;
  store: PartitionStateStore;
  metrics: WorkerMetrics;
  tokens: string[];
  bounds: LogBounds;
  /** Kafka's id of the topic, as the processor would read it (null: unknown). */
  topic: { id: string | null };
}

function setup(policy: LogMismatchPolicy = 'fail'): Setup {
  const prefix = newRedisPrefix('statelog');
  prefixes.push(prefix);
  const topic = `t${prefixes.length}`;
  const sink = new ClickHouseSink(client, db.name);
  const tokens: string[] = [];
  const recording = {
    eventBatch: sink.eventBatch.bind(sink),
    insertEventBatch: sink.insertEventBatch.bind(sink),
    async insertSessions(rows: readonly SessionValues[], token: string): Promise<void> {
      tokens.push(token);
      await sink.insertSessions(rows, token);
    },
  };
  const store = new PartitionStateStore(redis, prefix, topic, 0, { activeSeconds: 3600, idleSeconds: 3600 });
  const metrics = new WorkerMetrics();
  const bounds: LogBounds = { low: 0n, high: 1000n, committed: -1n };
  const topicState = { id: 'id-1' as string | null };
  const processor = () =>
    new PartitionProcessor(topic, 0, {
      store,
      kafkaLog: { bounds: async () => ({ ...bounds }), topicId: async () => topicState.id },
      storedSessions: new StoredSessions(client, db.name),
      onLogMismatch: policy,
      sink: recording,
      deadLetter: { plan: async () => [], send: async () => undefined },
      eventRow: eventRowOf,
      engine: { timeoutMs: 30 * 60_000, latenessMs: 3_600_000 },
      closeDelayMs: 2_000,
      maxClockSkewMs: 5 * 60_000,
      logCatchUpMs: 1_000,
      now: Date.now,
      metrics,
      log: createLogger('silent'),
    });
  return { processor, store, metrics, tokens, bounds, topic: topicState };
}

/** Every key of the partition, as DUMP payloads: what an older copy of Redis holds. */
async function snapshot(r: Redis, tag: string): Promise<Map<string, Buffer>> {
  const keys = await r.keys(`${tag}*`);
  const dump = new Map<string, Buffer>();
  for (const key of keys) {
    const value = await r.dumpBuffer(key);
    if (value) dump.set(key, value);
  }
  return dump;
}

async function restore(r: Redis, tag: string, dump: Map<string, Buffer>): Promise<void> {
  const now = await r.keys(`${tag}*`);
  if (now.length > 0) await r.del(...now);
  for (const [key, value] of dump) await r.restore(key, 0, value, 'REPLACE');
}

async function sessionsOf(user: string): Promise<Array<{ events: number; n: number }>> {
  return queryRows(client, `SELECT events, toUInt32(count()) AS n FROM ${db.name}.sessions FINAL WHERE sign = 1 AND user_key = {user:String} GROUP BY events`, { user });
}

/** Counts without FINAL: what dashboards and roll-ups sum. */
async function signedTotals(user: string): Promise<{ sessions: number; events: number }> {
  const [row] = await queryRows<{ sessions: string; events: string }>(
    client,
    `SELECT sum(sign) AS sessions, sum(sign * events) AS events FROM ${db.name}.sessions WHERE user_key = {user:String}`,
    { user },
  );
  return { sessions: Number(row?.sessions), events: Number(row?.events) };
}

async function metricValue(metrics: WorkerMetrics, name: string): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values[0]?.value as number | undefined) ?? 0;
}

it('a state restored from an older copy is never taken for a landed commit; reading again from it loses nothing', async () => {
  const s = setup();
  const first = s.processor();
  await first.claim();
  expect(first.takeSeek()).toBe('0');
  await first.handleBatch([...log('zed', 0, 1), ...log('ann', 2, 3)], '1000');
  const older = await snapshot(redis, s.store.keys.tag);
  await first.handleBatch(log('ann', 4, 6), '1000');
  await first.drain();
  await restore(redis, s.store.keys.tag, older); // the commit of offsets 4–6 is lost

  // Same epoch, but the rev went back: diverged, not "already applied".
  await expect(first.handleBatch(log('ann', 7, 8), '1000')).rejects.toBeInstanceOf(StateDivergedError);

  // The worker claims again; Kafka's group had committed up to 7.
  s.bounds.committed = 7n;
  const second = s.processor();
  await second.claim();
  expect(second.takeSeek()).toBe('3'); // from the state's last message, to check it is the same log
  expect(await metricValue(s.metrics, 'sessionizer_state_rewinds_total')).toBe(1);
  await second.handleBatch(log('ann', 3, 8), '1000');
  await second.drain();
  // Every event is in the one session standing; the row the lost commit had written is cancelled,
  // also for counts without FINAL.
  expect(await sessionsOf('ann')).toEqual([{ events: 7, n: 1 }]);
  expect(await signedTotals('ann')).toEqual({ sessions: 1, events: 7 });
  // zed (open session, untouched by the lost commit) was checked and found consistent: the
  // four rows are ann's (her lost versions back to zero, her row again under a new version).
  expect(await signedTotals('zed')).toEqual({ sessions: 1, events: 2 });
  expect(await metricValue(s.metrics, 'sessionizer_repaired_rows_total')).toBe(4);
  expect((await s.store.claim()).offset).toBe('8');
});

it('outbox entries made again after the state went back keep tokens apart from the first ones', async () => {
  const s = setup();
  const first = s.processor();
  await first.claim();
  await first.handleBatch(log('bo', 0, 1), '1000');
  await first.drain();
  const older = await snapshot(redis, s.store.keys.tag);
  await first.handleBatch(log('bo', 2, 2), '1000');
  await first.drain();
  await restore(redis, s.store.keys.tag, older);

  s.bounds.committed = 3n;
  const second = s.processor();
  await second.claim();
  second.takeSeek();
  await second.handleBatch(log('bo', 1, 4), '1000'); // the same outbox sequence number, other rows
  await second.drain();
  const seqs = s.tokens.slice(0, 3).map((t) => t.split(':outbox:')[1]?.split(':')[0]);
  expect(seqs).toEqual(['1', '2', '2']);
  expect(new Set(s.tokens.slice(0, 3)).size).toBe(3);
  expect(await sessionsOf('bo')).toEqual([{ events: 5, n: 1 }]);
  expect(await signedTotals('bo')).toEqual({ sessions: 1, events: 5 });
});

it('a state ahead of the log end (for longer than a leader change lasts) stops with both offsets named', async () => {
  const s = setup('fail');
  const first = s.processor();
  await first.claim();
  first.takeSeek();
  await first.handleBatch(log('cy', 0, 9), '1000');
  await first.drain();
  s.bounds.high = 4n; // a new, shorter log under the same name
  const error = await s.processor().claim().then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StateLogMismatchError);
  expect(String((error as Error).message)).toMatch(/\[0\].*applied offset 9.*log ends at offset 3/);
  expect(String((error as Error).message)).toContain('STATE_LOG_MISMATCH=reset');
});

it('a re-created topic (another message at the state offset) stops, or with reset starts the new log from its beginning', async () => {
  for (const policy of ['fail', 'reset'] as const) {
    const s = setup(policy);
    const first = s.processor();
    await first.claim();
    first.takeSeek();
    await first.handleBatch(log('di', 0, 4), '1000');
    await first.drain();

    const second = s.processor();
    await second.claim();
    expect(second.takeSeek()).toBe('4');
    const newLog = log('di2', 0, 6, 'b');
    if (policy === 'fail') {
      await expect(second.handleBatch(newLog.slice(4), '7')).rejects.toBeInstanceOf(StateLogMismatchError);
      continue;
    }
    await second.handleBatch(newLog.slice(4), '7');
    expect(second.takeSeek()).toBe('0');
    expect(await metricValue(s.metrics, 'sessionizer_state_resets_total')).toBe(1);
    await second.handleBatch(newLog, '7');
    await second.drain();
    expect(await sessionsOf('di2')).toEqual([{ events: 7, n: 1 }]);
    expect((await s.store.claim()).offset).toBe('6');
  }
});

it('a topic re-created under a running processor (a new topic id) is caught before its first batch is applied', async () => {
  for (const policy of ['fail', 'reset'] as const) {
    const s = setup(policy);
    const processor = s.processor();
    await processor.claim();
    processor.takeSeek();
    await processor.handleBatch(log('el', 0, 4), '1000');
    await processor.drain();
    // Deleted and created again, refilled past the old offsets: the consumer reads on at 5.
    s.topic.id = 'id-2';
    const newLog = log('el2', 0, 9, 'c');
    if (policy === 'fail') {
      const error = await processor.handleBatch(newLog.slice(5), '10').then(() => null, (err: unknown) => err);
      expect(error).toBeInstanceOf(StateLogMismatchError);
      expect(String((error as Error).message)).toContain('the topic was re-created (its id is id-2; the state was made from id-1)');
      continue;
    }
    await processor.handleBatch(newLog.slice(5), '10');
    expect(processor.takeSeek()).toBe('0');
    await processor.handleBatch(newLog, '10');
    await processor.drain();
    expect(await sessionsOf('el2')).toEqual([{ events: 10, n: 1 }]);
    // A claim after a restart finds the new id recorded: no mismatch.
    const again = s.processor();
    await again.claim();
    expect(await metricValue(s.metrics, 'sessionizer_state_resets_total')).toBe(1);
  }
});

it('a claim finds the state made from another topic id: the documented stop', async () => {
  const s = setup('fail');
  const processor = s.processor();
  await processor.claim();
  processor.takeSeek();
  await processor.handleBatch(log('fy', 0, 2), '1000');
  await processor.drain();
  s.topic.id = 'id-9';
  await expect(s.processor().claim()).rejects.toThrow(/the topic was re-created \(its id is id-9; the state was made from id-1\)/);
});

it('a high watermark that lags for a moment after a leader change is no other log', async () => {
  const s = setup('fail');
  const first = s.processor();
  await first.claim();
  first.takeSeek();
  await first.handleBatch(log('gi', 0, 9), '10');
  await first.drain();
  s.bounds.high = 5n; // the new leader has not advanced its high watermark yet
  setTimeout(() => (s.bounds.high = 10n), 300);
  const second = s.processor();
  await second.claim();
  expect(second.takeSeek()).toBe('9');
  expect(await metricValue(s.metrics, 'sessionizer_state_resets_total')).toBe(0);
});
