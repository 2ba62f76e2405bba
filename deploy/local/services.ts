/**
 * Starts and stops the local Kafka, Redis and ClickHouse, idempotently: what is already running
 * is reused, so `services:up` twice starts nothing the second time. A Kafka started afresh empties
 * the local Redis, so worker state never outlives the log it was made from. Used by the `services:up` /
 * `services:down` npm scripts and by the integration tests' global setup as their last resort.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureClickHouse, stopClickHouse } from './clickhouse';
import { say, sleep } from './daemon';
import { ensureKafka, stopKafka } from './kafka';
import { ensureKafkaCluster, stopKafkaCluster } from './kafka-cluster';
import { stateRoot } from './paths';
import { emptyLocalRedis, ensureRedis, stopRedis } from './redis';
import { ensureRedisCluster, stopRedisCluster } from './redis-cluster';
import { SERVICE_NAMES, type LocalService, type ServiceName } from './service';

/** Services started only when named (`services:up -- redis-cluster`), never by default. */
export const OPTIONAL_SERVICE_NAMES = ['redis-cluster', 'kafka-cluster'] as const;
export type OptionalServiceName = (typeof OPTIONAL_SERVICE_NAMES)[number];
type AnyServiceName = ServiceName | OptionalServiceName;

/** What `up` reports for one service (an optional one has its own name). */
export type StartedService = Omit<LocalService, 'name'> & { name: AnyServiceName };

const starters: Record<AnyServiceName, () => Promise<StartedService>> = {
  kafka: ensureKafka,
  redis: ensureRedis,
  clickhouse: ensureClickHouse,
  'redis-cluster': async () => ({ name: 'redis-cluster', ...(await ensureRedisCluster()) }),
  'kafka-cluster': async () => ({ name: 'kafka-cluster', ...(await ensureKafkaCluster()) }),
};
const stoppers: Record<AnyServiceName, () => Promise<boolean>> = {
  kafka: stopKafka,
  redis: stopRedis,
  clickhouse: stopClickHouse,
  'redis-cluster': stopRedisCluster,
  'kafka-cluster': stopKafkaCluster,
};

/** Starts (or finds) the named services, in parallel: start-up time is that of the slowest. */
export async function servicesUp<N extends AnyServiceName>(names: readonly N[] = SERVICE_NAMES as readonly N[]): Promise<Array<StartedService & { name: N }>> {
  return withLock(async () => {
    const results = await Promise.allSettled(names.map((name) => starters[name]()));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failures.length > 0) {
      // Leave nothing half-started behind: stop what this call started before failing.
      for (const r of results) if (r.status === 'fulfilled' && r.value.startedNow) await stoppers[r.value.name]();
      throw new Error(failures.map((f) => (f instanceof Error ? f.message : String(f))).join('\n\n'));
    }
    const services = results.map((r) => (r as PromiseFulfilledResult<StartedService & { name: N }>).value);
    // A fresh Kafka has new logs: worker state kept in our Redis belongs to the old ones.
    if (services.some((s) => s.startedNow && KAFKA_NAMES.has(s.name))) {
      const redisStartedNow = services.some((s) => s.name === 'redis' && s.startedNow);
      if (!redisStartedNow && (await emptyLocalRedis())) say('a fresh Kafka started: emptied the local Redis (its worker state belonged to the previous Kafka)');
    }
    return services;
  });
}

const KAFKA_NAMES: ReadonlySet<AnyServiceName> = new Set(['kafka', 'kafka-cluster']);

/** Stops the named services if this tooling started them; returns the names it stopped. */
export async function servicesDown<N extends AnyServiceName>(names: readonly N[] = SERVICE_NAMES as readonly N[]): Promise<N[]> {
  return withLock(async () => {
    const stopped = await Promise.all(names.map(async (name) => ((await stoppers[name]()) ? [name] : [])));
    return stopped.flat();
  });
}

/** All the environment variables of some started services, in one record. */
export function envOf(services: readonly StartedService[]): Record<string, string> {
  return Object.assign({}, ...services.map((s) => s.env)) as Record<string, string>;
}

/**
 * One `up`/`down` at a time per checkout (two test runs starting the same broker would fight
 * over its port and data directory). The lock is a directory holding the owner's pid; a lock
 * whose owner died is taken over.
 */
async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const lockDir = path.join(stateRoot(), '.lock');
  const ownerFile = path.join(lockDir, 'pid');
  const deadline = Date.now() + 5 * 60_000;
  let waited = false;
  for (;;) {
    fs.mkdirSync(stateRoot(), { recursive: true });
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(ownerFile, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(fs.existsSync(ownerFile) ? fs.readFileSync(ownerFile, 'utf8') : NaN);
      if (Number.isInteger(owner) && !alive(owner)) {
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`services lock ${lockDir} held by pid ${owner} for too long`);
      if (!waited) say(`waiting for another services:up/down (pid ${owner})`);
      waited = true;
      await sleep(200);
    }
  }
  try {
    return await work();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
