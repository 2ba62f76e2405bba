/**
 * `sessionizer loadgen` against a real Kafka: about rate × duration events in about duration
 * seconds, keyed by user key, live timestamps with bounded disorder, duplicates identical.
 */
import type { Kafka } from 'kafkajs';
import { runLoadgen } from '../../src/commands/loadgen-command';
import { loadConfig } from '../../src/config';
import { createKafka, getKafka, uniqueName } from '../support';
import { readTopic } from '../support/read-topic';
import { createTopic } from '../support/worker-harness';


let kafka: Kafka;
beforeAll(async () => {
  kafka = await createKafka(uniqueName('loadgen_test'));
});

describe('loadgen', () => {
  it('sends rate × duration events in about duration seconds, live, keyed, with disorder and identical duplicates', async () => {
    const topic = uniqueName('loadgen');
    await createTopic(kafka, topic, 4);
    const { brokers } = await getKafka();
    const reports: string[] = [];
    const rate = 300;
    const duration = 4;
    const before = Date.now();
    const stats = await runLoadgen(
      { users: 200, rate, duration, duplicateRate: 0.05, disorderSeconds: 2 },
      { config: loadConfig({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPICS: topic, LOG_LEVEL: 'warn' }), log: (t) => void reports.push(t) },
    );
    const after = Date.now();
    expect(stats.sent).toBe(rate * duration);
    expect(stats.seconds).toBeGreaterThanOrEqual(duration - 0.5);
    expect(stats.seconds).toBeLessThan(duration + 3);
    expect(stats.duplicates).toBeGreaterThan(0);
    expect(reports.join('')).toMatch(new RegExp(`loadgen: ${rate * duration} events \\(${stats.duplicates} duplicates\\) of ${stats.users} users sent to ${topic}`));

    const messages = await readTopic(kafka, topic, stats.sent);
    expect(messages).toHaveLength(stats.sent);
    const byId = new Map<string, string>();
    let duplicates = 0;
    let outOfOrder = 0;
    const lastTsOfPartition = new Map<number, number>();
    const partitionOfKey = new Map<string, number>();
    for (const m of messages) {
      const event = JSON.parse(m.value) as Record<string, unknown>;
      expect(m.key).toBe((event.anonymous_id as string) || (event.user_id as string));
      const ts = typeof event.timestamp === 'number' ? event.timestamp : Date.parse(event.timestamp as string);
      expect(ts).toBeGreaterThanOrEqual(before - 2_000);
      expect(ts).toBeLessThanOrEqual(after);
      const id = event.event_id as string;
      if (byId.has(id)) {
        duplicates += 1;
        expect(m.value).toBe(byId.get(id));
      }
      byId.set(id, m.value);
      if (ts < (lastTsOfPartition.get(m.partition) ?? -Infinity)) outOfOrder += 1;
      lastTsOfPartition.set(m.partition, Math.max(ts, lastTsOfPartition.get(m.partition) ?? -Infinity));
      const seen = partitionOfKey.get(m.key as string);
      if (seen !== undefined) expect(m.partition).toBe(seen);
      partitionOfKey.set(m.key as string, m.partition);
    }
    expect(duplicates).toBe(stats.duplicates);
    expect(outOfOrder).toBeGreaterThan(0);
    expect(partitionOfKey.size).toBe(stats.users);
  }, 60_000);
});
