/**
 * The worker with Redis and ClickHouse gone (cut through TCP proxies, the shared servers stay
 * up): /readyz still answers within a second, saying what is down, and SIGTERM still ends the
 * process within SHUTDOWN_TIMEOUT_SECONDS.
 */
import { runMigrate } from '../../src/commands/migrate-command';
import { loadConfig } from '../../src/config';
import { closedPort } from '../support/cli';
import { TcpProxy } from '../support/tcp-proxy';
import { createKafka, getClickHouse, getRedisUrl, newRedisPrefix, uniqueName, useTestDatabase } from '../support';
import { createTopic, produce, waitFor, WorkerProcess, workerEnv } from '../support/worker-harness';

const db = useTestDatabase('outage');

async function readyz(port: number): Promise<{ status: number; body: { status: string; checks: Record<string, boolean> }; ms: number }> {
  const started = Date.now();
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, boolean> }, ms: Date.now() - started };
}

it('answers /readyz within 1 s and exits within the shutdown bound on SIGTERM while Redis and ClickHouse are down', async () => {
  const clickhouse = await getClickHouse();
  await runMigrate({ config: loadConfig({ CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: db.name }), log: () => undefined });
  const redisUrl = new URL(getRedisUrl());
  const chUrl = new URL(clickhouse.url);
  const redisProxy = new TcpProxy(redisUrl.hostname, Number(redisUrl.port || 6379));
  const chProxy = new TcpProxy(chUrl.hostname, Number(chUrl.port));
  await redisProxy.open();
  await chProxy.open();
  const kafka = await createKafka();
  const topic = uniqueName('outage');
  await createTopic(kafka, topic, 2);
  const port = await closedPort();
  const env = await workerEnv({ topic, groupId: uniqueName('outage_group'), redisPrefix: newRedisPrefix('outage'), database: db.name });
  const worker = new WorkerProcess({
    ...env,
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    CLICKHOUSE_URL: `http://127.0.0.1:${chProxy.port}`,
    HTTP_PORT: String(port),
    SHUTDOWN_TIMEOUT_SECONDS: '5',
  });
  try {
    await worker.ready();
    await waitFor(async () => (await readyz(port)).status === 200, 30_000, () => worker.output.slice(-2000));

    await redisProxy.cut();
    await chProxy.cut();
    // Traffic while Redis is down: a batch is now waiting on Redis, retrying.
    await produce(kafka, topic, [{ event_id: 'o-1', type: 'page_view', timestamp: Date.now(), anonymous_id: 'outage-a' }]);
    for (let i = 0; i < 3; i++) {
      const probe = await readyz(port);
      expect(probe.ms).toBeLessThan(1_000);
      expect(probe.status).toBe(503);
      expect(probe.body.checks).toMatchObject({ redis: false, clickhouse: false });
    }

    const stopped = Date.now();
    worker.child.kill('SIGTERM');
    await worker.exited;
    // 5 s bound, plus a little for the process to go.
    expect(Date.now() - stopped).toBeLessThan(8_000);
  } finally {
    await worker.kill();
    await redisProxy.cut();
    await chProxy.cut();
  }
}, 120_000);
