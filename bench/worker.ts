/**
 * `npm run bench:worker`: end-to-end throughput of one worker on this machine.
 *
 *  1. produces BENCH_EVENTS (default 1,000,000) events of ≥ 50,000 users to a fresh topic, as
 *     rich as real traffic (page, campaign, device, geo, some properties: src/loadgen/traffic.ts);
 *  2. a plain kafkajs consumer group that only reads the topic (same fetch sizes), and the
 *     baseline: the same consumer JSON.parsing each message (the least any consumer of JSON
 *     events does);
 *  3. one `sessionizer worker` (built `dist/`, separate process) from the first message until
 *     every session is closed in ClickHouse; Redis bytes per open session are sampled midway.
 *     The CPU time each process of the pipeline spent meanwhile (the worker, and Kafka, Redis
 *     and ClickHouse when they run on this machine) is read from /proc.
 * Steps 2–3 run BENCH_RUNS times (default 3) on the same topic; medians are reported.
 * Targets: the worker ≥ 0.33 of the parsing consumer's rate; Redis ≤ 600 B per open session and
 * ≤ 100 B per idle known user. Exits 1 when one is missed.
 * BENCH_WORKER_NODE_ARGS adds Node options to the worker process (a CPU profile, say).
 * Services: KAFKA_BROKERS / REDIS_URL / CLICKHOUSE_URL when set, else local ones as in the tests.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { migrate } from '../src/clickhouse/migrations';
import { decodeState } from '../src/state/codec';
import { deleteRedisKeys } from '../test/support/isolation';
import { resolveServices } from '../test/support/resolve-services';
import { produceTraffic } from './produce-traffic';
import { listenerPid, median, processCpuSeconds } from './stats';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const USERS = Number(process.env.BENCH_USERS ?? Math.max(50_000, Math.round(EVENTS / 18)));
const PARTITIONS = 4;
const MAX_BYTES = 8 * 1024 * 1024;
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const TARGET_RATIO = 0.33;
const TARGET_OPEN_BYTES = 600;
const TARGET_IDLE_BYTES = 100;

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const services = await resolveServices((line) => process.stderr.write(`[services] ${line}\n`));
  Object.assign(process.env, services.env);
  const brokers = (process.env.KAFKA_BROKERS as string).split(',');
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const topic = `bench_${Date.now().toString(36)}`;
  const clickhouse = createClient({ url: process.env.CLICKHOUSE_URL, username: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '' });
  const redis = new Redis(process.env.REDIS_URL as string);
  const runs: Array<{ plain: number; parsing: number; worker: WorkerRun; cpu: CpuByProcess }> = [];
  try {
    log(`machine: ${cpus().length}× ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    await admin.disconnect();

    const { count: produced, bytes } = await produceTraffic(kafka, topic, { events: EVENTS, users: USERS, seed: 3, acks: 1 });
    log(`produced ${produced} events (${Math.round(bytes / produced)} bytes of JSON on average) of ${USERS} users to ${topic} (${PARTITIONS} partitions); ${RUNS} run(s), each: plain consumer, parsing consumer, then worker`);
    const services = { kafka: listenerPid(brokers[0] as string), redis: listenerPid(process.env.REDIS_URL as string), clickhouse: listenerPid(process.env.CLICKHOUSE_URL as string) };

    // Each run reads the same topic with fresh consumer groups, database and Redis prefix; the
    // machine is shared (a VM), so single runs move by ±5% and the median is reported.
    for (let i = 1; i <= RUNS; i++) {
      const name = `${topic}_r${i}`;
      const plain = await plainConsumerSeconds(kafka, topic, `${name}_plain`, produced);
      const parsing = await plainConsumerSeconds(kafka, topic, `${name}_parse`, produced, true);
      await migrate(clickhouse, { database: name, cluster: '' });
      try {
        const before = serviceCpu(services);
        const worker = await workerSeconds(topic, name, clickhouse, redis);
        const after = serviceCpu(services);
        const cpu: CpuByProcess = { worker: worker.cpuSeconds, kafka: delta(before.kafka, after.kafka), redis: delta(before.redis, after.redis), clickhouse: delta(before.clickhouse, after.clickhouse) };
        runs.push({ plain, parsing, worker, cpu });
        log(
          `run ${i}: plain ${plain.toFixed(2)} s (${Math.round(produced / plain)} events/s); plain + JSON.parse ${parsing.toFixed(2)} s (${Math.round(produced / parsing)} events/s); worker ${worker.seconds.toFixed(2)} s (${Math.round(produced / worker.seconds)} events/s, ${(parsing / worker.seconds).toFixed(3)} of parsing; lag 0 at ${worker.caughtUpSeconds.toFixed(2)} s)` +
            `, ${worker.sessions} sessions; CPU s: ${describeCpu(cpu)}`,
        );
      } finally {
        await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${name}` }).catch(() => undefined);
        await deleteRedisKeys(redis, `{${name}:`);
      }
    }

    const plain = median(runs.map((r) => r.plain));
    const parsing = median(runs.map((r) => r.parsing));
    const seconds = median(runs.map((r) => r.worker.seconds));
    const rate = produced / seconds;
    // Each run's worker against the parsing consumer of the same run, then the median of those.
    const ratio = median(runs.map((r) => r.parsing / r.worker.seconds));
    log(`plain kafkajs consumer: ${plain.toFixed(2)} s, ${Math.round(produced / plain)} events/s (median)`);
    log(`parsing consumer:       ${parsing.toFixed(2)} s, ${Math.round(produced / parsing)} events/s (median): ${(plain / parsing).toFixed(2)} of the plain consumer`);
    log(`sessionizer worker:     ${seconds.toFixed(2)} s until all sessions closed, ${Math.round(rate)} events/s end to end (median)`);
    log(`ratio worker/parsing:   ${ratio.toFixed(3)} (median of the runs' ratios; target ≥ ${TARGET_RATIO}) ${ratio >= TARGET_RATIO ? 'PASS' : 'FAIL'}`);
    const perMillion = (key: keyof CpuByProcess) => {
      const values = runs.map((r) => r.cpu[key]).filter((c): c is number => c !== null);
      return values.length === runs.length ? (median(values) / produced) * 1e6 : null;
    };
    const cpuRows = (['worker', 'kafka', 'redis', 'clickhouse'] as const).map((key) => [key, perMillion(key)] as const);
    const known = cpuRows.filter(([, v]) => v !== null) as Array<readonly [string, number]>;
    log(`CPU seconds per million events (median): ${cpuRows.map(([k, v]) => `${k} ${v === null ? 'not measured (not a local process)' : v.toFixed(1)}`).join(', ')}; total ${known.reduce((a, [, v]) => a + v, 0).toFixed(1)}`);
    const last = runs[runs.length - 1]?.worker;
    const open = last?.bytesPerOpenSession ?? null;
    const idle = last?.bytesPerIdleUser ?? null;
    log(`redis bytes per open session (user state with one open session): ${open ?? 'not sampled'} (target ≤ ${TARGET_OPEN_BYTES}) ${open !== null && open <= TARGET_OPEN_BYTES ? 'PASS' : 'FAIL'}`);
    log(`redis bytes per idle known user (idle record in the partition's idle buckets): ${idle ?? 'not sampled'} (target ≤ ${TARGET_IDLE_BYTES}) ${idle !== null && idle <= TARGET_IDLE_BYTES ? 'PASS' : 'FAIL'}`);
    if (ratio < TARGET_RATIO || open === null || open > TARGET_OPEN_BYTES || idle === null || idle > TARGET_IDLE_BYTES) process.exitCode = 1;
  } finally {
    await clickhouse.close();
    redis.disconnect();
    await services.release();
  }
}

/**
 * A kafkajs consumer group that only reads the topic; with `parse`, it also JSON.parses every
 * message (the least any consumer of JSON events does), to show where the ratio target sits.
 */
async function plainConsumerSeconds(kafka: Kafka, topic: string, groupId: string, total: number, parse = false): Promise<number> {
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: MAX_BYTES, maxBytes: MAX_BYTES * 4 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let started = 0;
  const done = new Promise<number>((resolve) => {
    void consumer.run({
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }) => {
        if (!started) started = Date.now();
        if (parse) for (const message of batch.messages) JSON.parse(message.value?.toString('utf8') ?? 'null');
        seen += batch.messages.length;
        if (seen >= total) resolve((Date.now() - started) / 1000);
      },
    });
  });
  const seconds = await done;
  await consumer.disconnect();
  return seconds;
}

/** CPU seconds each process of the pipeline spent during one worker run; null: not measured. */
interface CpuByProcess {
  worker: number | null;
  kafka: number | null;
  redis: number | null;
  clickhouse: number | null;
}

function serviceCpu(pids: { kafka: number | null; redis: number | null; clickhouse: number | null }): Omit<CpuByProcess, 'worker'> {
  const of = (pid: number | null) => (pid === null ? null : processCpuSeconds(pid));
  return { kafka: of(pids.kafka), redis: of(pids.redis), clickhouse: of(pids.clickhouse) };
}

const delta = (before: number | null, after: number | null) => (before === null || after === null ? null : after - before);

function describeCpu(cpu: CpuByProcess): string {
  return Object.entries(cpu)
    .map(([k, v]) => `${k} ${v === null ? '–' : v.toFixed(1)}`)
    .join(', ');
}

interface WorkerRun {
  seconds: number;
  /** When the group's lag was first seen at 0 (the rest is closing the last sessions). */
  caughtUpSeconds: number;
  cpuSeconds: number | null;
  sessions: number;
  bytesPerOpenSession: number | null;
  bytesPerIdleUser: number | null;
}

/** One worker process with its own group, database and Redis prefix (all named `name`). */
async function workerSeconds(topic: string, name: string, clickhouse: ReturnType<typeof createClient>, redis: Redis): Promise<WorkerRun> {
  const database = name;
  const prefix = name;
  // BENCH_WORKER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the worker alone;
  // Node refuses --cpu-prof in NODE_OPTIONS.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(__dirname, '..', 'dist', 'cli.js'), 'worker'], {
    env: {
      ...process.env,
      KAFKA_TOPICS: topic,
      KAFKA_GROUP_ID: `${name}_worker`,
      KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`,
      KAFKA_CREATE_TOPICS: 'true',
      REDIS_KEY_PREFIX: prefix,
      CLICKHOUSE_DATABASE: database,
      HTTP_PORT: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const started = Date.now();
  let bytesPerOpenSession: number | null = null;
  let bytesPerIdleUser: number | null = null;
  let sessions = 0;
  let caughtUpSeconds: number | undefined;
  // One admin client for the whole run. The lag is polled often (cheap, and it sets the
  // resolution of the result); ClickHouse is asked only once the lag is 0, since a FINAL query
  // over a growing table would take its share of the machine from the worker being measured.
  const admin = new Kafka({ clientId: 'bench-lag', brokers: (process.env.KAFKA_BROKERS as string).split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`);
      if (bytesPerOpenSession === null && Date.now() - started > 2_000) bytesPerOpenSession = await sampleOpenSessionBytes(redis, prefix);
      if ((await lagOf(topic)) > 0) continue;
      caughtUpSeconds ??= (Date.now() - started) / 1000;
      const result = await clickhouse.query({
        query: `SELECT count() AS sessions, countIf(is_open = 1) AS open FROM ${database}.sessions FINAL WHERE sign = 1`,
        format: 'JSONEachRow',
      });
      const [row] = (await result.json()) as Array<{ sessions: string; open: string }>;
      if (row && Number(row.sessions) > 0 && Number(row.open) === 0) {
        sessions = Number(row.sessions);
        break;
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const cpuSeconds = processCpuSeconds(child.pid);
    bytesPerIdleUser = await sampleIdleBytes(redis, prefix);
    return { seconds, caughtUpSeconds: caughtUpSeconds ?? seconds, bytesPerOpenSession, bytesPerIdleUser, sessions, cpuSeconds };
  } finally {
    // Wait for it to leave (it drains its last writes), so the run's keys can be deleted.
    const exited = new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    child.kill('SIGTERM');
    await exited;
    await admin.disconnect();
  }

  async function lagOf(t: string): Promise<number> {
    const [committed] = await admin.fetchOffsets({ groupId: `${name}_worker`, topics: [t] });
    const highs = await admin.fetchTopicOffsets(t);
    return highs.reduce((sum, { partition, high }) => sum + Number(high) - Math.max(0, Number(committed?.partitions.find((p) => p.partition === partition)?.offset ?? 0)), 0);
  }
}

/** Average MEMORY USAGE of user state keys (`…:u:<user key>`) that hold exactly one session, open. */
async function sampleOpenSessionBytes(redis: Redis, prefix: string): Promise<number | null> {
  const sizes: number[] = [];
  for (const key of await scanKeys(redis, `{${prefix}:*}:u:*`, 2_000)) {
    const value = await redis.getBuffer(key);
    if (!value) continue;
    const state = decodeState(key.slice(key.indexOf('}:u:') + 4), value);
    if (state.sessions.length === 1 && state.sessions[0]?.written?.is_open === 1) sizes.push(Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')));
    if (sizes.length >= 500) break;
  }
  return sizes.length >= 50 ? Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) : null;
}

/**
 * Bytes per idle known user: idle records are fields of the partitions' idle buckets
 * (`…:i:<n>`), so the MEMORY USAGE of every bucket (key, headers and records) over the records.
 */
async function sampleIdleBytes(redis: Redis, prefix: string): Promise<number | null> {
  let bytes = 0;
  let records = 0;
  for (const bucket of await scanKeys(redis, `{${prefix}:*}:i:*`, Infinity)) {
    bytes += Number(await redis.call('MEMORY', 'USAGE', bucket, 'SAMPLES', '0'));
    records += await redis.hlen(bucket);
  }
  return records > 0 ? Math.round(bytes / records) : null;
}

async function scanKeys(redis: Redis, pattern: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0' && keys.length < limit);
  return keys;
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
