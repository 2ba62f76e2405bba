/** Reading a topic back in tests: what producers and the worker sent, with keys and headers. */
import type { Kafka } from 'kafkajs';
import { uniqueName } from './isolation';

export interface ReadMessage {
  partition: number;
  key: string | null;
  value: string;
  /** The value's bytes as sent (`value` is their UTF-8 decoding, lossy for other bytes). */
  raw: Buffer | null;
  headers: Record<string, string>;
  offset: string;
  /** The message's timestamp (the producer's CreateTime), epoch ms. */
  timestamp: number;
}

/**
 * Reads `count` messages of `topic` from the beginning (a fresh consumer group), waiting up to
 * `timeoutMs`; then a little longer, so any message beyond `count` shows up too.
 */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('read'), maxWaitTimeInMs: 250 });
  const messages: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        messages.push({
          partition,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? '',
          raw: message.value,
          headers,
          offset: message.offset,
          timestamp: Number(message.timestamp),
        });
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (messages.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}
