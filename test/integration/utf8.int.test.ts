/**
 * Events are UTF-8 only, against a real Kafka, Redis and ClickHouse: a message whose bytes
 * are not UTF-8 goes to the dead-letter topic unchanged, with the reason, instead of becoming an
 * event with U+FFFD in it; `produce` skips and reports such a line by its number.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { runProduce } from '../../src/commands/produce-command';
import { loadConfig } from '../../src/config';
import { generateTraffic } from '../../src/loadgen/traffic';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, getKafka, newRedisPrefix, uniqueName } from '../support';
import { readTopic } from '../support/read-topic';
import { WorkerProcess, createTopic, recomputeRecords, waitForSessions, workerEnv } from '../support/worker-harness';

jest.setTimeout(180_000);

/** A valid event except for `bytes` put raw into its page title. */
function eventWith(id: string, bytes: number[]): Buffer {
  const json = JSON.stringify({ event_id: id, type: 'page_view', timestamp: '2024-05-01T10:00:00.000Z', anonymous_id: 'utf8-user', page: { title: '@@' } });
  const [head, tail] = json.split('@@') as [string, string];
  return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
}

let kafka: Kafka;
let admin: ClickHouseClient;
let worker: WorkerProcess | null = null;
const prefixes: string[] = [];
let work = '';

beforeAll(async () => {
  kafka = await createKafka('utf8-test');
  admin = await createClickHouseClient();
  work = mkdtempSync(join(tmpdir(), 'utf8-test-'));
});
afterAll(async () => {
  await worker?.kill();
  await admin.close();
  const redis = createRedis();
  for (const prefix of prefixes) await deleteRedisKeys(redis, `{${prefix}`);
  await redis.quit();
  rmSync(work, { recursive: true, force: true });
});

it('the worker dead-letters a message that is not UTF-8, unchanged and with the reason, and stores no event of it', async () => {
  const topic = uniqueName('utf8');
  const database = uniqueName('utf8');
  const redisPrefix = newRedisPrefix('utf8');
  prefixes.push(redisPrefix);
  await createTopic(kafka, topic, 2);
  await migrate(admin, { database, cluster: '' });
  const env = await workerEnv({ topic, groupId: uniqueName('utf8_group'), redisPrefix, database });

  const good = [...generateTraffic({ users: 40, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 3_600_000, duplicateRate: 0, disorderMs: 0, seed: 31, idPrefix: 'u8-' })];
  const bad = [
    { id: 'latin1', value: eventWith('latin1', [0x63, 0x61, 0x66, 0xe9]) }, // "café" in Latin-1
    { id: 'surrogate', value: eventWith('surrogate', [0xed, 0xa0, 0x80]) },
  ];
  const producer = kafka.producer();
  await producer.connect();
  const half = Math.floor(good.length / 2);
  const message = (e: (typeof good)[number]) => ({ key: String(e.anonymous_id || e.user_id), value: JSON.stringify(e) });
  await producer.send({
    topic,
    acks: -1,
    messages: [...good.slice(0, half).map(message), ...bad.map((b) => ({ key: 'utf8-user', value: b.value })), ...good.slice(half).map(message)],
  });
  await producer.disconnect();

  worker = new WorkerProcess(env);
  await waitForSessions(admin, database, await recomputeRecords(good), 120_000, () => worker?.output ?? '');

  const dead = await readTopic(kafka, env.KAFKA_DEAD_LETTER_TOPIC as string, bad.length);
  expect(dead).toHaveLength(bad.length);
  for (const b of bad) {
    const found = dead.find((m) => m.raw?.equals(b.value));
    expect(found).toBeDefined();
    const offset = b.value.findIndex((byte) => byte >= 0x80);
    expect(found?.headers['x-sessionizer-error']).toBe(`not valid UTF-8 (byte 0x${(b.value[offset] as number).toString(16)} at offset ${offset})`);
    expect(found?.headers['x-sessionizer-source-topic']).toBe(topic);
  }
  const stored = await admin.query({
    query: `SELECT countIf(event_id IN ('latin1', 'surrogate')) AS bad, count() AS all FROM ${database}.events FINAL`,
    format: 'JSONEachRow',
  });
  const [counts] = (await stored.json()) as Array<{ bad: number | string; all: number | string }>;
  expect(Number(counts?.bad)).toBe(0);
  expect(Number(counts?.all)).toBe(new Set(good.map((e) => e.event_id)).size);
  await worker.stop();
});

it('produce skips a line that is not UTF-8 and reports it by number, sending the others', async () => {
  const topic = uniqueName('utf8_produce');
  await createTopic(kafka, topic, 1);
  const input = join(work, 'mixed.ndjson');
  const ok = (id: string) => Buffer.from(JSON.stringify({ event_id: id, type: 'page_view', timestamp: 1714557600000, anonymous_id: 'p' }) + '\n');
  writeFileSync(input, Buffer.concat([ok('p1'), eventWith('bad', [0xff]), Buffer.from('\n'), ok('p2')]));
  const reports: string[] = [];
  const brokers = (await getKafka()).brokers.join(',');
  const stats = await runProduce({ input }, { config: loadConfig({ KAFKA_BROKERS: brokers, KAFKA_TOPICS: topic, LOG_LEVEL: 'warn' }), log: (t) => void reports.push(t), progress: false });
  expect(stats).toEqual({ topic, lines: 3, sent: 2, skipped: 1, redatedDays: 0 });
  expect(reports.join('')).toContain(`line 2: skipped, not valid UTF-8 (byte 0xff at offset ${eventWith('bad', [0xff]).indexOf(0xff)})`);
  const sent = await readTopic(kafka, topic, 2);
  expect(sent.map((m) => JSON.parse(m.value).event_id).sort()).toEqual(['p1', 'p2']);
});
