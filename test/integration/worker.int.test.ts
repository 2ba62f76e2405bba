/**
 * The streaming worker against real Kafka, Redis and ClickHouse: after the stream goes quiet,
 * `sessions FINAL WHERE sign = 1` must equal `recompute` over the same events, field for field.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { generateTraffic, type RawEvent } from '../../src/loadgen/traffic';
import { createClickHouseClient, createKafka, newRedisPrefix, uniqueName } from '../support';
import {
  WorkerProcess,
  createTopic,
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

  beforeAll(async () => {
    kafka = await createKafka('worker-test');
    admin = await createClickHouseClient();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    await admin.close();
  });

  async function setUp(name: string) {
    const topic = uniqueName(name);
    const database = uniqueName(name);
    await createTopic(kafka, topic, 4);
    await migrate(admin, { database, cluster: '' });
    const env = await workerEnv({ topic, groupId: uniqueName(`${name}_group`), redisPrefix: newRedisPrefix(name), database });
    const start = () => {
      const w = new WorkerProcess(env);
      workers.push(w);
      return w;
    };
    return { topic, database, env, start };
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
});
