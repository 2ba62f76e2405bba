/**
 * Sending events to Kafka from the command line (`produce`, `loadgen`): messages keyed by user
 * key (the event format) so all of one visitor's events land on one partition, collected into batches
 * and sent with `acks: -1`. The partitioner is the Java-compatible murmur2 one, as in the worker,
 * so a key lands on the same partition whichever client produced it.
 */
import type { Kafka, Producer } from 'kafkajs';
import { within } from '../preflight/deadline';
import { COMMAND_RESEND, createProducer, sendRecord } from './producer';
import { createTopics } from './topic-spec';

/** `anonymous_id ?? user_id`, the first non-empty string; null when the event has neither. */
export function userKeyOfJson(event: Record<string, unknown>): string | null {
  for (const field of ['anonymous_id', 'user_id']) {
    const value = event[field];
    if (typeof value === 'string' && value !== '') return value;
  }
  return null;
}

export interface EventSenderOptions {
  /** Messages per produce request, at most. Default 1000. */
  maxBatchMessages?: number;
  /** Bytes of values per produce request, at most (about). Default 900 KiB: under the broker's 1 MiB default. */
  maxBatchBytes?: number;
}

export class EventSender {
  private batch: Array<{ key: string | null; value: string }> = [];
  private batchBytes = 0;
  private sentCount = 0;
  private readonly maxMessages: number;
  private readonly maxBytes: number;

  private constructor(
    private readonly kafka: Kafka,
    private producer: Producer | null,
    readonly topic: string,
    options: EventSenderOptions,
  ) {
    this.maxMessages = options.maxBatchMessages ?? 1000;
    this.maxBytes = options.maxBatchBytes ?? 900 * 1024;
  }

  /** Connects a producer for `topic`. */
  static async connect(kafka: Kafka, topic: string, options: EventSenderOptions = {}): Promise<EventSender> {
    return new EventSender(kafka, await newProducer(kafka), topic, options);
  }

  /** Messages acknowledged by the brokers so far. */
  get sent(): number {
    return this.sentCount;
  }

  /** Queues one message; sends the batch (and waits for it) when it is full. */
  async add(key: string | null, value: string): Promise<void> {
    const bytes = Buffer.byteLength(value) + (key ? Buffer.byteLength(key) : 0);
    if (this.batch.length > 0 && (this.batch.length >= this.maxMessages || this.batchBytes + bytes > this.maxBytes)) await this.flush();
    this.batch.push({ key, value });
    this.batchBytes += bytes;
  }

  /** Sends what is queued. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const messages = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    await sendRecord(
      async () => (this.producer ??= await newProducer(this.kafka)),
      { topic: this.topic, acks: -1, messages },
      {
        ...COMMAND_RESEND,
        // A producer that lost a broker can keep its dead connections and stale leaders: the
        // next attempt starts a new one, from fresh metadata.
        beforeRetry: async () => {
          const old = this.producer;
          this.producer = null;
          if (old) await within(5_000, old.disconnect()).catch(() => undefined);
        },
      },
    );
    this.sentCount += messages.length;
  }

  /** Sends what is queued and disconnects. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.producer?.disconnect();
    }
  }

  /** Disconnects without sending what is queued (after a failure). */
  async abort(): Promise<void> {
    this.batch = [];
    await this.producer?.disconnect().catch(() => undefined);
  }
}

/**
 * One attempt per send; `flush` retries a batch whole for about a minute (COMMAND_RESEND: a leader
 * moving or a broker restarting takes seconds; kafkajs' own retry can drop a partition, see
 * producer.ts). A batch sent again may have been written once already: delivery is at least
 * once, and the worker counts each event_id once.
 */
async function newProducer(kafka: Kafka): Promise<Producer> {
  const producer = createProducer(kafka);
  await producer.connect();
  return producer;
}

/** Creates `topic` with `partitions` partitions when it does not exist (KAFKA_CREATE_TOPICS), replicated on a cluster (topic-spec.ts). */
export async function ensureTopic(kafka: Kafka, topic: string, partitions: number): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return false;
    return (await createTopics(admin, [topic], partitions)).created;
  } finally {
    await admin.disconnect();
  }
}
