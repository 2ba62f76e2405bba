/**
 * Tools for broker fault tests on a local Kafka cluster: a producer that paces a stream in the
 * background (so every partition keeps receiving while brokers fail), who leads what and who
 * coordinates a group, and how long each partition went without a batch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka, Message } from 'kafkajs';
import { createProducer } from '../../src/kafka/producer';
import { readTopic, type ReadMessage } from './read-topic';

export interface PacedProducer {
  /** Resolves when every message was acknowledged (acks=all); never rejects: failed sends are retried. */
  done: Promise<void>;
  /** How many messages were acknowledged so far. */
  acknowledged(): number;
  /** Longest time between two acknowledged sends, ms (the producer's own stall during faults). */
  longestSendGapMs(): number;
}

/**
 * Sends `messages` in order, `perSecond` a second in chunks of a tenth of a second. A chunk
 * whose send fails after the client's retries is sent again until it is acknowledged, so a
 * message may be in the log twice: tests count what the log holds, not what was sent.
 */
export function pacedProducer(kafka: Kafka, topic: string, messages: readonly Message[], perSecond: number): PacedProducer {
  let acknowledged = 0;
  let lastAckAt = Date.now();
  let longestGap = 0;
  const chunk = Math.max(1, Math.round(perSecond / 10));
  const done = (async () => {
    // The project's producer: not idempotent (kafkajs' idempotent producer can lose track of its
    // sequence numbers when a request to a failing broker times out), one attempt per send, and
    // a failed chunk sent again whole below (kafkajs' own retry can drop a partition whose leader
    // moved: src/kafka/producer.ts). A resent message may be in the log twice; the worker counts
    // it once (by event_id).
    const producer = createProducer(kafka, { maxInFlightRequests: 1 });
    await connectUntil(() => producer.connect());
    const started = Date.now();
    try {
      for (let i = 0; i < messages.length; i += chunk) {
        const due = started + (i / perSecond) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        const part = messages.slice(i, i + chunk);
        for (;;) {
          try {
            await producer.send({ topic, messages: [...part], acks: -1 });
            break;
          } catch {
            await sleep(250);
          }
        }
        acknowledged += part.length;
        const now = Date.now();
        longestGap = Math.max(longestGap, now - lastAckAt);
        lastAckAt = now;
      }
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  })();
  return { done, acknowledged: () => acknowledged, longestSendGapMs: () => longestGap };
}

async function connectUntil(connect: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(500);
    }
  }
}

/** Java's `String.hashCode`, which Kafka uses to place a group on a `__consumer_offsets` partition. */
function javaHashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(31, hash) + text.charCodeAt(i)) | 0;
  return hash;
}

/** The broker coordinating `groupId`: the leader of its `__consumer_offsets` partition. */
export async function groupCoordinator(kafka: Kafka, groupId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
    const partitions = topics[0]?.partitions ?? [];
    // Kafka's Utils.abs: the hash with its sign bit cleared (not Math.abs: MIN_VALUE stays put).
    const index = (javaHashCode(groupId) & 0x7fffffff) % partitions.length;
    const leader = partitions.find((p) => p.partitionId === index)?.leader;
    if (leader === undefined) throw new Error(`no leader for __consumer_offsets partition ${index}`);
    return leader;
  } finally {
    await admin.disconnect();
  }
}

/** Leader broker of each partition of `topic`. */
export async function partitionLeaders(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return new Map((topics[0]?.partitions ?? []).map((p) => [p.partitionId, p.leader]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * When the worker last received each message (`events.received_at` of the batch that wrote its
 * row; a batch written again after a fault counts from its last try), by `partition:offset`.
 */
export async function receivedAt(client: ClickHouseClient, database: string): Promise<Map<string, number>> {
  const result = await client.query({
    query: `SELECT kafka_partition AS partition, toString(kafka_offset) AS offset, toUnixTimestamp64Milli(max(received_at)) AS at
            FROM ${database}.events GROUP BY kafka_partition, kafka_offset`,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  const rows = (await result.json()) as Array<{ partition: number; offset: string; at: number }>;
  return new Map(rows.map((r) => [`${r.partition}:${r.offset}`, r.at]));
}

/**
 * Per partition, the longest any message appended to the log in [from, to] waited until the
 * worker received it (with the topic's timestamps set to LogAppendTime, the message timestamp
 * is when it became readable, so the producer's own retries do not count).
 */
export function longestWaits(
  messages: ReadonlyArray<{ partition: number; offset: string; timestamp: number }>,
  received: ReadonlyMap<string, number>,
  from: number,
  to: number,
): Map<number, number> {
  const waits = new Map<number, number>();
  for (const m of messages) {
    if (m.timestamp < from || m.timestamp > to) continue;
    const at = received.get(`${m.partition}:${m.offset}`);
    if (at === undefined) continue; // an invalid message: no events row
    waits.set(m.partition, Math.max(waits.get(m.partition) ?? 0, at - m.timestamp));
  }
  return waits;
}

/** Every message of a topic as it stands (its size read first, so duplicates are read too). */
export async function wholeTopic(kafka: Kafka, topic: string): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  let total = 0;
  try {
    for (const { high, low } of await admin.fetchTopicOffsets(topic)) total += Number(high) - Number(low);
  } finally {
    await admin.disconnect();
  }
  return readTopic(kafka, topic, total, 120_000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A Redis server of a test's own (the shared one must stay up for other tests), persisting
 * every write (append-only, fsync always), so a clean shutdown and start loses nothing.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], {
      stdio: 'ignore',
    });
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (await tcpAnswers(this.port, 'PING\r\n', '+PONG')) return;
      await sleep(100);
    }
    throw new Error(`redis-server on ${this.port} did not answer`);
  }

  /** SHUTDOWN (Redis writes what it has and exits), waiting for the process to end. */
  async shutdown(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await tcpAnswers(this.port, 'SHUTDOWN\r\n', '');
    await exited;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }
}

/** Sends one inline command; whether the answer starts with `expected`. */
function tcpAnswers(port: number, command: string, expected: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(expected === ''));
    socket.once('connect', () => socket.write(command));
    socket.once('data', (data) => done(data.toString().startsWith(expected)));
    socket.once('close', () => done(expected === ''));
  });
}
