/**
 * `sessionizer collect` as a process, configured from the environment like in production: it
 * serves the API, /healthz, /readyz and /metrics; on SIGTERM it stops accepting, finishes the
 * requests in progress, and exits 0 within its bound.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createKafka, createRedis, deleteRedisKeys, getKafka, getRedisUrl, newRedisPrefix, uniqueName } from '../support';
import { AUTH, KEY } from '../support/collect-app';
import { readTopic } from '../support/read-topic';
import { createTopic, waitFor } from '../support/worker-harness';

jest.setTimeout(120_000);
const REPO = join(__dirname, '..', '..');

describe('sessionizer collect (process)', () => {
  const redisPrefix = newRedisPrefix('collect_cmd');
  afterAll(async () => {
    const redis = createRedis();
    await deleteRedisKeys(redis, redisPrefix);
    await redis.quit();
  });

  it('serves, reports health and metrics, and drains on SIGTERM', async () => {
    const kafka = await createKafka('collect-cmd');
    const topic = uniqueName('collect_cmd');
    await createTopic(kafka, topic, 2);
    const { brokers } = await getKafka();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'src', 'cli.ts'), 'collect'], {
      cwd: REPO,
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPICS: topic,
        REDIS_URL: getRedisUrl(),
        REDIS_KEY_PREFIX: redisPrefix,
        COLLECT_WRITE_KEYS: `${KEY}:site-1`,
        COLLECT_PORT: '0',
        COLLECT_HOST: '127.0.0.1',
        COLLECT_GEOIP_DATABASES: 'off',
        HTTP_PORT: '0',
        SHUTDOWN_TIMEOUT_SECONDS: '10',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => output.includes('http endpoint listening'), 60_000, () => output);
      const portOf = (msg: string) => Number(new RegExp(`"port":(\\d+)[^\\n]*"msg":"${msg}"`).exec(output)?.[1]);
      const api = `http://127.0.0.1:${portOf('collector listening')}`;
      const ops = `http://127.0.0.1:${portOf('http endpoint listening')}`;

      const ok = await fetch(`${api}/v1/track`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'e', messageId: 'cmd-1', anonymousId: 'a' }) });
      expect(ok.status).toBe(200);
      expect((await fetch(`${ops}/healthz`)).status).toBe(200);
      const ready = await fetch(`${ops}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([200, { status: 'ok', checks: { accepting: true, kafka: true, redis: true } }]);
      const metrics = await (await fetch(`${ops}/metrics`)).text();
      expect(metrics).toMatch(/sessionizer_collect_events_total\{type="track",outcome="accepted"\} 1/);
      expect(metrics).toMatch(/sessionizer_collect_requests_total\{route="track",status="200"\} 1/);
      expect(metrics).toContain('sessionizer_collect_produce_duration_seconds_bucket');
      expect(metrics).toContain('sessionizer_collect_queue_events 0');

      // A request in progress when SIGTERM arrives is still answered, and delivered.
      const inFlight = fetch(`${api}/v1/batch`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ batch: Array.from({ length: 50 }, (_, i) => ({ type: 'track', event: 'e', messageId: `drain-${i}`, anonymousId: `a${i}` })) }),
      });
      await new Promise((r) => setTimeout(r, 5));
      const started = Date.now();
      child.kill('SIGTERM');
      expect((await inFlight).status).toBe(200);
      const code = await exited;
      if (code !== 0) console.log(output.slice(-3000));
      expect(code).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(output).toContain('"msg":"collector stopped"');
      const onTopic = await readTopic(kafka, topic, 51, 30_000);
      expect(onTopic).toHaveLength(51);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
