/**
 * A normal start of the worker and of the collector logs no error-level line and no warning of a
 * misconfigured client (kafkajs' "Limiting retries for the idempotent producer may invalidate
 * EoS guarantees" once greeted every collector start): operators alert on errors, and a first
 * run should not look broken.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runMigrate } from '../../src/commands/migrate-command';
import { loadConfig } from '../../src/config';
import { createRedis, deleteRedisKeys, getClickHouse, getKafka, getRedisUrl, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { AUTH, KEY } from '../support/collect-app';
import { waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const REPO = join(__dirname, '..', '..');
const db = useTestDatabase('clean_start');

/** Log lines at warn (40) or above, and any line that mentions the idempotent producer's warning. */
function noisy(output: string): string[] {
  return output.split('\n').filter((line) => /"level":(4|5|6)\d\b/.test(line) || /Limiting retries|EoS guarantees/.test(line));
}

it('the worker starts on new topics and a new group without a warning or an error', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const prefix = newRedisPrefix('clean_start').slice(0, -1);
  const env = { ...(await workerEnv({ topic: uniqueName('clean_start'), groupId: uniqueName('clean_start_group'), redisPrefix: prefix, database: db.name })), HTTP_PORT: '0' };
  const worker = new WorkerProcess(env);
  try {
    await worker.ready();
    expect(noisy(worker.output)).toEqual([]);
  } finally {
    expect(await worker.stop()).toBe(0);
  }
  expect(noisy(worker.output)).toEqual([]);
  const redis = createRedis();
  await deleteRedisKeys(redis, prefix);
  redis.disconnect();
}, 120_000);

it('the collector starts, delivers and stops without a warning or an error', async () => {
  const { brokers } = await getKafka();
  const redisPrefix = newRedisPrefix('clean_collect');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'collect'], {
    cwd: REPO,
    env: {
      ...process.env,
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPICS: uniqueName('clean_collect'),
      KAFKA_CREATE_TOPICS: 'true',
      REDIS_URL: getRedisUrl(),
      REDIS_KEY_PREFIX: redisPrefix,
      COLLECT_WRITE_KEYS: `${KEY}:site-1`,
      COLLECT_PORT: '0',
      COLLECT_HOST: '127.0.0.1',
      COLLECT_GEOIP_DATABASES: 'off',
      HTTP_PORT: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(async () => output.includes('http endpoint listening'), 60_000, () => output);
    const api = `http://127.0.0.1:${Number(/"port":(\d+)[^\n]*"msg":"collector listening"/.exec(output)?.[1])}`;
    const sent = await fetch(`${api}/v1/track`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'e', messageId: 'clean-1', anonymousId: 'a' }) });
    expect(sent.status).toBe(200);
  } finally {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const redis = createRedis();
    await deleteRedisKeys(redis, redisPrefix);
    redis.disconnect();
  }
  expect(noisy(output)).toEqual([]);
}, 120_000);
