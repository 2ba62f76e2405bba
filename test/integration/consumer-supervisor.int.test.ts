/**
 * The consumer supervisor against the real broker: a seek asked for before the consumer has
 * joined (or while it is being rebuilt) is applied once it has; a rebuild makes a new consumer
 * that joins and reads on, and each rebuild is counted with its reason; it names the coordinator
 * its consumer joined through.
 */
import type { EachBatchPayload, Kafka } from 'kafkajs';
import { ConsumerSupervisor, type RestartReason } from '../../src/kafka/consumer-supervisor';
import { createLogger } from '../../src/observability/logger';
import { createKafka, uniqueName } from '../support';
import { createTopic, produce, waitFor } from '../support/worker-harness';

jest.setTimeout(120_000);

describe('ConsumerSupervisor', () => {
  let kafka: Kafka;
  beforeAll(async () => {
    kafka = await createKafka();
  });

  function supervise(topic: string, seen: Array<{ offset: string; build: number }>, restarts: RestartReason[]): ConsumerSupervisor {
    const supervisor: ConsumerSupervisor = new ConsumerSupervisor({
      kafka,
      consumer: { groupId: uniqueName('supervised'), maxWaitTimeInMs: 250, heartbeatInterval: 500, rebalanceTimeout: 10_000 },
      topics: [topic],
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset }: EachBatchPayload) => {
        for (const m of batch.messages) seen.push({ offset: m.offset, build: supervisor.builds });
        resolveOffset(batch.lastOffset());
      },
      onAssignment: () => undefined,
      countRestart: (reason) => restarts.push(reason),
      log: createLogger('silent'),
    });
    return supervisor;
  }

  it('applies a seek asked for before the consumer joined, and one asked for during a rebuild', async () => {
    const topic = uniqueName('supervised');
    await createTopic(kafka, topic, 1);
    await produce(
      kafka,
      topic,
      Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `m${i}` })),
    );
    const seen: Array<{ offset: string; build: number }> = [];
    const restarts: RestartReason[] = [];
    const supervisor = supervise(topic, seen, restarts);
    // Before start: no consumer can take it yet (kafkajs would throw), so it is kept.
    supervisor.seek(topic, 0, '7');
    await supervisor.start();
    try {
      await waitFor(async () => seen.length >= 3, 30_000, () => JSON.stringify(seen));
      expect(seen[0]?.offset).toBe('7');

      // During a rebuild: the old consumer is gone, the new one has not joined. (On a broker
      // that has just started, the first consumer may have crashed on "the coordinator is
      // loading" and been rebuilt already: counts are taken from here.)
      const before = supervisor.builds;
      const crashesBefore = restarts.length;
      const rebuilding = supervisor.restart('stall', 'test');
      supervisor.seek(topic, 0, '2');
      await rebuilding;
      expect(supervisor.builds).toBe(before + 1);
      await waitFor(async () => seen.some((s) => s.build === before + 1), 30_000, () => JSON.stringify(seen));
      expect(seen.find((s) => s.build === before + 1)?.offset).toBe('2');
      expect(restarts.slice(crashesBefore)).toEqual(['stall']);
    } finally {
      await supervisor.stop();
    }
  });

  it('joins a second restart asked for while one is under way, and stops for good', async () => {
    const topic = uniqueName('supervised');
    await createTopic(kafka, topic, 1);
    const restarts: RestartReason[] = [];
    const supervisor = supervise(topic, [], restarts);
    await supervisor.start();
    const first = supervisor.restart('crash', 'one');
    const second = supervisor.restart('stall', 'two');
    await Promise.all([first, second]);
    expect(restarts).toEqual(['crash']);
    expect(supervisor.builds).toBe(2);
    await supervisor.stop();
    await supervisor.restart('crash', 'after stop');
    expect(supervisor.builds).toBe(2);
  });

  it('names the coordinator it joined through, and the one the cluster names now', async () => {
    const topic = uniqueName('supervised');
    await createTopic(kafka, topic, 1);
    const supervisor = supervise(topic, [], []);
    expect(await supervisor.coordinators()).toBeNull(); // no consumer yet
    await supervisor.start();
    try {
      let known: { joinedThrough: number; now: number } | null = null;
      await waitFor(async () => (known = await supervisor.coordinators()) !== null, 30_000);
      // One broker: the same node both times, the one the cluster's metadata names.
      const admin = kafka.admin();
      await admin.connect();
      const { brokers } = await admin.describeCluster().finally(() => admin.disconnect());
      expect(known).toEqual({ joinedThrough: brokers[0]?.nodeId, now: brokers[0]?.nodeId });
    } finally {
      await supervisor.stop();
    }
  });
});
