/**
 * `npm run bench:scale`: how a pool of workers scales on this machine, and the per-event costs a
 * capacity plan starts from (docs/capacity.md).
 *
 *  1. produces BENCH_EVENTS (default 1,000,000) events to a fresh topic of 12 partitions;
 *  2. for pools of 1, 2 and 3 `sessionizer worker` processes (BENCH_POOLS), each with a fresh
 *     group, database and Redis prefix: the time from start until the group's lag is 0 and every
 *     session is closed; events/s; each process's CPU; Redis memory of the run's keys (sampled
 *     while sessions are open, and at the end); ClickHouse rows and bytes per event;
 *  3. a pool of 2 that a third member joins at a third of the stream and one member leaves
 *     (SIGTERM) at two thirds: the longest stall of the group's committed offsets after each,
 *     i.e. the pause a rebalance costs.
 * Services: KAFKA_BROKERS / REDIS_URL / CLICKHOUSE_URL when set, else local ones as in the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { migrate } from '../src/clickhouse/migrations';
import { deleteRedisKeys } from '../test/support/isolation';
import { resolveServices } from '../test/support/resolve-services';
import { produceTraffic } from './produce-traffic';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const USERS = Number(process.env.BENCH_USERS ?? Math.max(50_000, Math.round(EVENTS / 18)));
const PARTITIONS = 12;
const POOLS = (process.env.BENCH_POOLS ?? '1,2,3').split(',').map(Number).filter((n) => n > 0); // BENCH_POOLS=none: only the rebalance run

const log = (line: string) => process.stdout.write(`${line}\n`);

interface PoolRun {
  workers: number;
  seconds: number;
  sessions: number;
  /** CPU seconds of each worker process. */
  cpu: number[];
  redisOpenBytes: number;
  redisEndBytes: number;
  redisKeysOpen: number;
  redisKeysEnd: number;
  clickhouse: Record<string, { rows: number; bytes: number }>;
}

async function main(): Promise<void> {
  const services = await resolveServices((line) => process.stderr.write(`[services] ${line}\n`));
  Object.assign(process.env, services.env);
  const brokers = (process.env.KAFKA_BROKERS as string).split(',');
  const kafka = new Kafka({ clientId: 'bench-scale', brokers, logLevel: logLevel.NOTHING });
  const topic = `scale_${Date.now().toString(36)}`;
  const clickhouse = createClient({ url: process.env.CLICKHOUSE_URL, username: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '', request_timeout: 300_000 });
  const redis = new Redis(process.env.REDIS_URL as string);
  const admin = kafka.admin();
  await admin.connect();
  try {
    log(`machine: ${cpus().length}× ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const { count: produced } = await produceTraffic(kafka, topic, { events: EVENTS, users: USERS, seed: 5, acks: -1 });
    log(`produced ${produced} events of ${USERS} users to ${topic} (${PARTITIONS} partitions)`);

    const runs: PoolRun[] = [];
    for (const workers of POOLS) {
      const name = `${topic}_p${workers}`;
      await migrate(clickhouse, { database: name });
      try {
        const run = await poolRun(admin, clickhouse, redis, topic, name, workers, produced);
        runs.push(run);
        const cpuTotal = run.cpu.reduce((a, b) => a + b, 0);
        log(
          `pool of ${workers}: ${run.seconds.toFixed(2)} s, ${Math.round(produced / run.seconds)} events/s, ${run.sessions} sessions; ` +
            `CPU per process ${run.cpu.map((c) => c.toFixed(1)).join(' / ')} s = ${((cpuTotal / produced) * 1e6).toFixed(1)} µs per event; ` +
            `Redis ${mb(run.redisOpenBytes)} in ${run.redisKeysOpen} keys while open, ${mb(run.redisEndBytes)} in ${run.redisKeysEnd} keys at the end; ` +
            `ClickHouse ${Object.entries(run.clickhouse).map(([t, v]) => `${t} ${v.rows} rows ${mb(v.bytes)}`).join(', ')}`,
        );
      } finally {
        await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${name}` }).catch(() => undefined);
        await deleteRedisKeys(redis, `{${name}:`);
      }
    }

    const pauses = await rebalanceRun(admin, clickhouse, redis, topic, `${topic}_rb`, produced);
    log(`load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')} (a shared machine: other jobs take cores from the pool)`);
    log(`rebalance (pool of 2, one joins at 1/3, one leaves at 2/3): longest stall of committed offsets after the join ${pauses.join.toFixed(2)} s, after the leave ${pauses.leave.toFixed(2)} s; whole run ${pauses.seconds.toFixed(2)} s`);

    log('');
    log('| workers | seconds | events/s | speed-up | CPU per process (s) | µs CPU per event | Redis while open | Redis at end |');
    log('|---|---|---|---|---|---|---|---|');
    const base = runs[0]?.seconds ?? 1;
    for (const r of runs) {
      const cpuTotal = r.cpu.reduce((a, b) => a + b, 0);
      log(`| ${r.workers} | ${r.seconds.toFixed(2)} | ${Math.round(produced / r.seconds)} | ${(base / r.seconds).toFixed(2)} | ${r.cpu.map((c) => c.toFixed(1)).join(' / ')} | ${((cpuTotal / produced) * 1e6).toFixed(1)} | ${mb(r.redisOpenBytes)} (${r.redisKeysOpen} keys) | ${mb(r.redisEndBytes)} (${r.redisKeysEnd} keys) |`);
    }
    const last = runs[runs.length - 1];
    if (last) {
      for (const [table, v] of Object.entries(last.clickhouse)) log(`ClickHouse ${table}: ${(v.rows / produced).toFixed(3)} rows and ${(v.bytes / produced).toFixed(1)} compressed bytes per event`);
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await clickhouse.close();
    redis.disconnect();
    await services.release();
  }
}

function startWorker(topic: string, name: string): ChildProcess {
  return spawn(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'worker'], {
    env: {
      ...process.env,
      KAFKA_TOPICS: topic,
      KAFKA_GROUP_ID: `${name}_group`,
      KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`,
      KAFKA_CREATE_TOPICS: 'true',
      REDIS_KEY_PREFIX: name,
      CLICKHOUSE_DATABASE: name,
      HTTP_PORT: '0',
      LOG_LEVEL: 'error',
    },
    // A member leaving makes the others log retriable errors (fenced partitions, a restarted
    // consumer): expected here, and noise in the report.
    stdio: ['ignore', 'ignore', process.env.BENCH_WORKER_LOGS ? 'inherit' : 'ignore'],
  });
}

async function stopWorker(child: ChildProcess): Promise<number | null> {
  const cpu = processCpuSeconds(child.pid);
  const exited = new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
  child.kill('SIGTERM');
  await exited;
  return cpu;
}

async function poolRun(admin: Admin, clickhouse: ClickHouseClient, redis: Redis, topic: string, name: string, workers: number, total: number): Promise<PoolRun> {
  const started = Date.now();
  const children = Array.from({ length: workers }, () => startWorker(topic, name));
  let open: { bytes: number; keys: number } | null = null;
  try {
    for (;;) {
      await sleep(250);
      for (const child of children) if (child.exitCode !== null) throw new Error(`a worker exited with ${child.exitCode}`);
      const committed = await committedTotal(admin, `${name}_group`, topic);
      if (open === null && committed >= total / 2) open = await redisBytes(redis, name);
      if (committed < total) continue;
      const sessions = await closedSessions(clickhouse, name);
      if (sessions !== null) {
        const seconds = (Date.now() - started) / 1000;
        const cpu = children.map((c) => processCpuSeconds(c.pid) ?? 0);
        const end = await redisBytes(redis, name);
        return {
          workers,
          seconds,
          sessions,
          cpu,
          redisOpenBytes: open?.bytes ?? 0,
          redisKeysOpen: open?.keys ?? 0,
          redisEndBytes: end.bytes,
          redisKeysEnd: end.keys,
          clickhouse: await tableSizes(clickhouse, name),
        };
      }
    }
  } finally {
    await Promise.all(children.map(stopWorker));
  }
}

/** Pool of 2; a third joins at 1/3 of the stream, one leaves at 2/3. The longest offset stall after each. */
async function rebalanceRun(admin: Admin, clickhouse: ClickHouseClient, redis: Redis, topic: string, name: string, total: number): Promise<{ join: number; leave: number; seconds: number }> {
  await migrate(clickhouse, { database: name });
  const started = Date.now();
  const children = [startWorker(topic, name), startWorker(topic, name)];
  const stalls = { join: 0, leave: 0 };
  let phase: 'start' | 'join' | 'leave' = 'start';
  let lastValue = -1;
  let lastMove = Date.now();
  try {
    for (;;) {
      await sleep(100);
      const committed = await committedTotal(admin, `${name}_group`, topic);
      const now = Date.now();
      if (committed !== lastValue) {
        if (phase !== 'start') stalls[phase] = Math.max(stalls[phase], (now - lastMove) / 1000);
        lastValue = committed;
        lastMove = now;
      }
      if (phase === 'start' && committed >= total / 3) {
        phase = 'join';
        children.push(startWorker(topic, name));
        lastMove = Date.now();
      } else if (phase === 'join' && committed >= (2 * total) / 3) {
        phase = 'leave';
        await stopWorker(children.shift() as ChildProcess);
        lastMove = Date.now();
      }
      if (committed >= total && (await closedSessions(clickhouse, name)) !== null) break;
    }
    return { ...stalls, seconds: (Date.now() - started) / 1000 };
  } finally {
    await Promise.all(children.map(stopWorker));
    await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${name}` }).catch(() => undefined);
    await deleteRedisKeys(redis, `{${name}:`);
  }
}

async function committedTotal(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

/** Current sessions when every one is closed, else null. */
async function closedSessions(clickhouse: ClickHouseClient, database: string): Promise<number | null> {
  const result = await clickhouse.query({
    query: `SELECT count() AS sessions, countIf(is_open = 1) AS open FROM ${database}.sessions FINAL WHERE sign = 1`,
    format: 'JSONEachRow',
  });
  const [row] = (await result.json()) as Array<{ sessions: string; open: string }>;
  return row && Number(row.sessions) > 0 && Number(row.open) === 0 ? Number(row.sessions) : null;
}

async function tableSizes(clickhouse: ClickHouseClient, database: string): Promise<Record<string, { rows: number; bytes: number }>> {
  const result = await clickhouse.query({
    query: `SELECT table, sum(rows) AS rows, sum(data_compressed_bytes) AS bytes FROM system.parts
            WHERE database = {db:String} AND active AND table IN ('events', 'sessions') GROUP BY table ORDER BY table`,
    query_params: { db: database },
    format: 'JSONEachRow',
  });
  const rows = (await result.json()) as Array<{ table: string; rows: string; bytes: string }>;
  return Object.fromEntries(rows.map((r) => [r.table, { rows: Number(r.rows), bytes: Number(r.bytes) }]));
}

/** MEMORY USAGE summed over every key of the run (state, deadlines, outbox, meta). */
async function redisBytes(redis: Redis, prefix: string): Promise<{ bytes: number; keys: number }> {
  let bytes = 0;
  let keys = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    if (found.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.call('MEMORY', 'USAGE', key);
    for (const [, value] of (await pipeline.exec()) ?? []) bytes += Number(value ?? 0);
    keys += found.length;
  } while (cursor !== '0');
  return { bytes, keys };
}

/** User + system CPU time of a live process, from /proc (Linux); null elsewhere. */
function processCpuSeconds(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
