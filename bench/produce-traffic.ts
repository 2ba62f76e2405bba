/**
 * The benchmarks' input: `events` generated events of `users` visitors over three days, keyed by
 * user key, sent in batches of 5,000 with up to 8 sends in flight. Returns how many were sent and
 * their JSON bytes.
 */
import type { Kafka } from 'kafkajs';
import { generateTraffic } from '../src/loadgen/traffic';

export async function produceTraffic(kafka: Kafka, topic: string, options: { events: number; users: number; seed: number; acks: -1 | 1 }): Promise<{ count: number; bytes: number }> {
  const producer = kafka.producer();
  await producer.connect();
  let batch: Array<{ key: string; value: string }> = [];
  let count = 0;
  let bytes = 0;
  const inFlight: Promise<unknown>[] = [];
  const traffic = generateTraffic({ users: options.users, startMs: Date.parse('2024-05-01T00:00:00Z'), spanMs: 3 * 86_400_000, duplicateRate: 0.01, disorderMs: 60_000, seed: options.seed });
  for (const event of traffic) {
    const value = JSON.stringify(event);
    bytes += Buffer.byteLength(value);
    batch.push({ key: String(event.anonymous_id || event.user_id), value });
    if (++count >= options.events) break;
    if (batch.length === 5_000) {
      inFlight.push(producer.send({ topic, messages: batch, acks: options.acks }));
      batch = [];
      if (inFlight.length >= 8) await Promise.all(inFlight.splice(0));
    }
  }
  if (batch.length) inFlight.push(producer.send({ topic, messages: batch, acks: options.acks }));
  await Promise.all(inFlight);
  await producer.disconnect();
  return { count, bytes };
}
