/**
 * Reads a topic from its start up to the end it had when we began (the high watermarks then),
 * with a throw-away consumer group that commits nothing and is deleted afterwards, so reading
 * the dead-letter topic never moves anyone's offsets.
 */
import { randomBytes } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';

export interface TopicMessage {
  partition: number;
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export async function readWholeTopic(kafka: Kafka, topic: string, groupPrefix: string, onMessage: (message: TopicMessage) => void): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${groupPrefix}-reader-${randomBytes(4).toString('hex')}`;
  try {
    const ends = new Map<number, bigint>();
    for (const { partition, high, low } of await admin.fetchTopicOffsets(topic)) {
      if (BigInt(high) > BigInt(low)) ends.set(partition, BigInt(high) - 1n);
    }
    if (ends.size === 0) return;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, heartbeatInterval: 1_000 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const last = ends.get(partition);
              if (last === undefined || BigInt(message.offset) > last) return;
              onMessage({ partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, headers: message.headers ?? {} });
              if (BigInt(message.offset) === last) ends.delete(partition);
              if (ends.size === 0) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
