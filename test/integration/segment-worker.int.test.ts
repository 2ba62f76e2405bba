/**
 * A worker consuming a Segment topic (KAFKA_SEGMENT_TOPICS) next to an own-format topic
 * (KAFKA_TOPICS), in one consumer group, against real Kafka, Redis and ClickHouse: the sessions
 * in ClickHouse equal `recompute` of the own events plus `recompute --format segment` of the
 * Segment messages; invalid Segment messages go to the dead-letter topic with the reason; and
 * the `events` table holds the mapped events, which recalculation reads as our own format.
 */
import { Readable, Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import type { SessionRecord } from '../../src/engine/session-row';
import { parseEvent } from '../../src/events/parse-event';
import { generateTraffic } from '../../src/loadgen/traffic';
import { recompute } from '../../src/recompute/recompute';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, dropTestDatabase, newRedisPrefix, uniqueName } from '../support';
import { readTopic } from '../support/read-topic';
import { KEY_EVENT_NAMES, toSegmentMessages } from '../support/segment-traffic';
import { WorkerProcess, createTopic, produce, recomputeRecords, waitForSessions, workerEnv } from '../support/worker-harness';

jest.setTimeout(240_000);

/** `recompute --format segment` of these lines, as records. */
async function recomputeSegment(lines: readonly string[]): Promise<SessionRecord[]> {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  await recompute(Readable.from(lines.map((l) => l + '\n')), sink, {
    timeoutMs: 30 * 60_000,
    input: { format: 'segment', keyEvents: KEY_EVENT_NAMES },
  });
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SessionRecord);
}

describe('sessionizer worker with a Segment topic', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  let worker: WorkerProcess | null = null;
  const redisPrefix = newRedisPrefix('segment');
  const database = uniqueName('segment');

  beforeAll(async () => {
    kafka = await createKafka('segment-worker-test');
    admin = await createClickHouseClient();
  });
  afterAll(async () => {
    await worker?.kill();
    await dropTestDatabase(admin, database);
    await admin.close();
    const redis = createRedis();
    await deleteRedisKeys(redis, `{${redisPrefix}`);
    await redis.quit();
  });

  it('sessionizes Segment messages as recompute --format segment does, beside an own-format topic', async () => {
    const ownTopic = uniqueName('own');
    const segmentTopic = uniqueName('segment');
    await createTopic(kafka, ownTopic, 2);
    await createTopic(kafka, segmentTopic, 4);
    await migrate(admin, { database, cluster: '' });
    const env = await workerEnv({
      topic: ownTopic,
      groupId: uniqueName('segment_group'),
      redisPrefix,
      database,
      extra: { KAFKA_SEGMENT_TOPICS: segmentTopic, KEY_EVENTS: KEY_EVENT_NAMES.join(',') },
    });

    const traffic = (users: number, seed: number, idPrefix: string) => [
      ...generateTraffic({ users, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 8 * 3_600_000, duplicateRate: 0.02, disorderMs: 60_000, seed, idPrefix }),
    ];
    const ownEvents = traffic(100, 21, 'o-');
    const messages = toSegmentMessages(traffic(400, 22, 's-'), 23, 0.01);
    const invalid = messages.filter((m) => !m.valid);
    expect(invalid.length).toBeGreaterThan(3);
    expect(messages.length).toBeGreaterThan(4_000);

    await produce(kafka, ownTopic, ownEvents);
    await produce(kafka, segmentTopic, messages);
    worker = new WorkerProcess(env);

    const expected = [...(await recomputeRecords(ownEvents)), ...(await recomputeSegment(messages.map((m) => m.value)))].sort(
      (a, b) => Buffer.compare(Buffer.from(a.user_key), Buffer.from(b.user_key)) || (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : 0),
    );
    // The Segment-only rules show in the result: skew-corrected times, key events by name, utm campaigns.
    expect(expected.some((s) => s.user_key.startsWith('s-') && s.source !== '(direct)' && s.medium !== 'referral')).toBe(true);
    expect(expected.some((s) => s.user_key.startsWith('s-') && s.browser !== '')).toBe(true);
    const w = worker;
    await waitForSessions(admin, database, expected, 180_000, () => w.output);

    // Invalid Segment messages: on the dead-letter topic, as sent, with the reason.
    const dead = await readTopic(kafka, env.KAFKA_DEAD_LETTER_TOPIC as string, invalid.length);
    expect(dead.map((m) => m.value).sort()).toEqual(invalid.map((m) => m.value).sort());
    for (const m of dead) {
      expect(m.headers['x-sessionizer-source-topic']).toBe(segmentTopic);
      expect(m.headers['x-sessionizer-error']).toBeTruthy();
    }

    // The events table keeps the mapped events: our own format, so recalculation can read them.
    const result = await admin.query({
      query: `SELECT raw, count() OVER () AS n FROM ${database}.events FINAL WHERE kafka_topic = {topic:String} LIMIT 50`,
      query_params: { topic: segmentTopic },
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const rows = (await result.json()) as Array<{ raw: string; n: number }>;
    expect(rows.length).toBe(50);
    // One row per distinct message (the table de-duplicates redelivered and duplicate events).
    const distinct = new Set(messages.filter((m) => m.valid).map((m) => (JSON.parse(m.value) as { messageId: string }).messageId));
    expect(rows[0]?.n).toBe(distinct.size);
    for (const row of rows) expect(parseEvent(row.raw).ok).toBe(true);

    expect(await w.stop()).toBe(0);
  });
});
