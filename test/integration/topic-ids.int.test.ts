/**
 * Kafka topic ids through our own Metadata v12 request (kafkajs has none): a re-created topic
 * gets a new id, a missing topic has none.
 */
import type { Kafka } from 'kafkajs';
import { TopicIds } from '../../src/kafka/topic-ids';
import { createKafka, uniqueName } from '../support';
import { waitFor } from '../support/worker-harness';

jest.setTimeout(60_000);

let kafka: Kafka;
beforeAll(async () => {
  kafka = await createKafka('topic-ids-test');
});

it('reads a topic id, a new one after the topic is deleted and created again, none for a missing topic', async () => {
  const topic = uniqueName('tid');
  const admin = kafka.admin();
  await admin.connect();
  const ids = new TopicIds(kafka);
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const first = (await ids.of([topic, uniqueName('missing')])).get(topic);
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect((await ids.of([topic])).get(topic)).toBe(first);
    expect((await ids.of([uniqueName('missing')])).size).toBe(0);

    await admin.deleteTopics({ topics: [topic] });
    await waitFor(async () => !(await admin.listTopics()).includes(topic), 30_000);
    await waitFor(async () => admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }).then(() => true, () => false), 30_000);
    const second = (await ids.of([topic])).get(topic);
    expect(second).toMatch(/^[0-9a-f]{32}$/);
    expect(second).not.toBe(first);
  } finally {
    await ids.close();
    await admin.disconnect();
  }
});
