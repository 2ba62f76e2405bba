/**
 * Running the real worker in integration tests: as a child process (`sessionizer worker` from
 * the TypeScript sources, so no build is needed), fed by a real producer, checked against the
 * offline recalculation of the same events.
 */
import { appendFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { SESSION_FIELDS, type SessionRecord } from '../../src/engine/session-row';
import { COMMAND_RESEND, createProducer, sendRecord } from '../../src/kafka/producer';
import { recompute } from '../../src/recompute/recompute';
import type { RawEvent } from '../../src/loadgen/traffic';
import { getClickHouse, getKafka, getRedisUrl } from './services';

const REPO = join(__dirname, '..', '..');

export interface WorkerEnv {
  topic: string;
  groupId: string;
  redisPrefix: string;
  database: string;
  deadLetterTopic?: string;
  timeoutMinutes?: number;
  latenessMinutes?: number;
  closeDelaySeconds?: number;
  extra?: Record<string, string>;
}

export class WorkerProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'worker'], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // TEST_WORKER_LOG=FILE keeps every worker's whole output (the failure message shows the end).
    const logFile = process.env.TEST_WORKER_LOG;
    const keep = (chunk: Buffer) => {
      if (logFile) appendFileSync(logFile, chunk);
      this.output += chunk.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves once the worker has joined its group and started consuming. */
  async ready(timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => this.output.includes('"msg":"worker started"'), timeoutMs, () => this.output.slice(-3000));
  }

  /** SIGTERM and wait: a clean shutdown exits 0. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    return this.exited;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export async function workerEnv(options: WorkerEnv): Promise<Record<string, string>> {
  const { brokers } = await getKafka();
  const clickhouse = await getClickHouse();
  return {
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPICS: options.topic,
    KAFKA_GROUP_ID: options.groupId,
    KAFKA_DEAD_LETTER_TOPIC: options.deadLetterTopic ?? `${options.topic}_dlq`,
    KAFKA_CREATE_TOPICS: 'true',
    KAFKA_TOPIC_PARTITIONS: '4',
    REDIS_URL: getRedisUrl(),
    REDIS_KEY_PREFIX: options.redisPrefix,
    CLICKHOUSE_URL: clickhouse.url,
    CLICKHOUSE_USER: clickhouse.username,
    CLICKHOUSE_PASSWORD: clickhouse.password,
    CLICKHOUSE_DATABASE: options.database,
    SESSION_TIMEOUT_MINUTES: String(options.timeoutMinutes ?? 30),
    ALLOWED_LATENESS_MINUTES: String(options.latenessMinutes ?? 60),
    CLOSE_DELAY_SECONDS: String(options.closeDelaySeconds ?? 1),
    HTTP_PORT: '0',
    // TEST_WORKER_LOG_LEVEL=debug (with TEST_WORKER_LOG=file) to see kafkajs' own steps in a fault test.
    LOG_LEVEL: process.env.TEST_WORKER_LOG_LEVEL ?? 'info',
    SHUTDOWN_TIMEOUT_SECONDS: '20',
    ...options.extra,
  };
}

/** The user key a producer keys messages by (the event format), for raw test events. */
export function userKeyOfRaw(event: RawEvent): string {
  return String(event.anonymous_id || event.user_id || '');
}

/** Produces raw events (or raw strings, for invalid ones) keyed by user key, in batches. */
export async function produce(kafka: Kafka, topic: string, events: ReadonlyArray<RawEvent | { key: string; value: string }>): Promise<void> {
  // The project's producer and send: a batch sent whole again after a failed attempt, never
  // acknowledged with a partition left out (src/kafka/producer.ts).
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    for (let i = 0; i < events.length; i += 2_000) {
      const messages = events.slice(i, i + 2_000).map((e) =>
        'value' in e && typeof e.value === 'string' && 'key' in e ? { key: String(e.key), value: e.value } : { key: userKeyOfRaw(e as RawEvent), value: JSON.stringify(e) },
      );
      await sendRecord(() => producer, { topic, messages, acks: -1 }, COMMAND_RESEND);
    }
  } finally {
    await producer.disconnect();
  }
}

/** Messages of `topic` the group has not committed yet, over all partitions. */
export async function groupLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  try {
    const [committed] = await kafkaAdmin.fetchOffsets({ groupId, topics: [topic] });
    const highs = await kafkaAdmin.fetchTopicOffsets(topic);
    let lag = 0;
    for (const { partition, high } of highs) {
      const c = committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
      lag += Number(high) - Math.max(0, Number(c));
    }
    return lag;
  } finally {
    await kafkaAdmin.disconnect();
  }
}

export async function createTopic(kafka: Kafka, topic: string, partitions = 4): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** What `recompute` makes of these events (as NDJSON lines, like a file). */
export async function recomputeRecords(events: readonly RawEvent[], timeoutMinutes = 30): Promise<SessionRecord[]> {
  const records: SessionRecord[] = [];
  let pending = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line) records.push(JSON.parse(line) as SessionRecord);
      done();
    },
  });
  await recompute(Readable.from(events.map((e) => JSON.stringify(e) + '\n')), sink, { timeoutMs: timeoutMinutes * 60_000 });
  return records;
}

/** Current sessions (`FINAL WHERE sign = 1`) in recompute's shape and order. */
export async function currentSessions(client: ClickHouseClient, database: string): Promise<Array<SessionRecord & { is_open: number }>> {
  const columns = SESSION_FIELDS.map((f) =>
    f === 'started_at' || f === 'ended_at' ? `concat(replaceOne(toString(${f}), ' ', 'T'), 'Z') AS ${f}` : f,
  );
  const result = await client.query({
    query: `SELECT ${columns.join(', ')}, is_open FROM ${database}.sessions FINAL WHERE sign = 1 ORDER BY site, user_key, started_at`,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return (await result.json()) as Array<SessionRecord & { is_open: number }>;
}

/** Drops `is_open` so rows compare with recompute's records field for field. */
export function withoutOpenFlag(rows: ReadonlyArray<SessionRecord & { is_open: number }>): SessionRecord[] {
  return rows.map(({ is_open: _open, ...record }) => record);
}

/** Polls `probe` until it returns true; fails with `describe()` after `timeoutMs`. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, describe: () => string | Promise<string> = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until ClickHouse holds exactly `expected`, all closed. */
export async function waitForSessions(
  client: ClickHouseClient,
  database: string,
  expected: readonly SessionRecord[],
  timeoutMs: number,
  worker?: () => string,
): Promise<void> {
  let last: Array<SessionRecord & { is_open: number }> = [];
  await waitFor(
    async () => {
      last = await currentSessions(client, database);
      return last.length === expected.length && last.every((r) => r.is_open === 0) && sameRecords(withoutOpenFlag(last), expected);
    },
    timeoutMs,
    () => `have ${last.length} sessions (${last.filter((r) => r.is_open).length} open), want ${expected.length}; ${firstDifference(withoutOpenFlag(last), expected)}\n${worker?.().slice(-4000) ?? ''}`,
  );
}

function sameRecords(a: readonly SessionRecord[], b: readonly SessionRecord[]): boolean {
  return a.length === b.length && a.every((r, i) => JSON.stringify(r) === JSON.stringify(b[i]));
}

function firstDifference(a: readonly SessionRecord[], b: readonly SessionRecord[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return `first difference at ${i}: got ${JSON.stringify(a[i])} want ${JSON.stringify(b[i])}`;
  }
  return 'no difference';
}
