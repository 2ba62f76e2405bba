/**
 * The worker's HTTP endpoint as Prometheus and Kubernetes see it: /healthz and /readyz answer
 * the tri-state JSON (ok, and degraded while ClickHouse is away), and after some traffic
 * /metrics lists every metric of the registry, with the event, session, batch, ClickHouse,
 * Redis, lag and open-session series moving.
 */
import { createServer, type AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { migrate } from '../../src/clickhouse/migrations';
import { WorkerMetrics } from '../../src/observability/metrics';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName, getClickHouse } from '../support';
import { TcpProxy } from '../support/tcp-proxy';
import { WorkerProcess, createTopic, produce, waitFor, workerEnv } from '../support/worker-harness';

jest.setTimeout(120_000);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Answer {
  status: number;
  body: { status: string; checks: Record<string, boolean> };
}

/** Samples of the Prometheus text format: `name{labels} value` → name, labels text, value. */
function samples(text: string): Array<{ name: string; labels: string; value: number }> {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      return { name: match[1] as string, labels: match[2] ?? '', value: Number(match[3]) };
    });
}

function total(text: string, name: string): number {
  return samples(text)
    .filter((s) => s.name === name)
    .reduce((sum, s) => sum + s.value, 0);
}

const T0 = Date.parse('2024-05-01T10:00:00Z');
const MIN = 60_000;
const ev = (id: string, user: string, at: number) => ({ event_id: id, type: 'page_view', timestamp: at, anonymous_id: user, page: { path: `/${id}` } });

describe('worker observability endpoint', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  let worker: WorkerProcess | null = null;
  let proxy: TcpProxy | null = null;
  const redisPrefix = newRedisPrefix('obs');

  beforeAll(async () => {
    kafka = await createKafka('observability-test');
    admin = await createClickHouseClient();
  });
  afterAll(async () => {
    await worker?.kill();
    await proxy?.cut();
    await admin.close();
    const redis = createRedis();
    // State keys start with the hash tag: `{prefix:topic:partition}:…`.
    await deleteRedisKeys(redis, `{${redisPrefix}`);
    await redis.quit();
  });

  it('answers /healthz, /readyz (ok, then degraded while ClickHouse is away) and lists every metric with live values', async () => {
    const topic = uniqueName('obs');
    const database = uniqueName('obs');
    await createTopic(kafka, topic, 4);
    await migrate(admin, { database, cluster: '' });
    const clickhouse = new URL((await getClickHouse()).url);
    proxy = new TcpProxy(clickhouse.hostname, Number(clickhouse.port || 8123));
    await proxy.open();
    const port = await freePort();
    const env = await workerEnv({
      topic,
      groupId: uniqueName('obs_group'),
      redisPrefix,
      database,
      extra: { HTTP_PORT: String(port), CLICKHOUSE_URL: `http://127.0.0.1:${proxy.port}`, KAFKA_MAX_WAIT_MS: '200', STALL_LIMIT_SECONDS: '8' },
    });
    worker = new WorkerProcess(env);
    await worker.ready();
    const output = async () => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), (err: unknown) => String(err));
      const ours = text.split('\n').filter((l) => l.startsWith('sessionizer_') && !l.startsWith('sessionizer_process') && !l.startsWith('sessionizer_nodejs'));
      return `${worker?.output.slice(-3000) ?? ''}\n${ours.join('\n')}`;
    };

    const get = async (path: string): Promise<Answer> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: (await response.json()) as Answer['body'] };
    };
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

    // Liveness and readiness: tri-state JSON.
    await waitFor(async () => (await get('/readyz')).status === 200, 30_000, output);
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok', checks: { running: true, kafka: true, loop: true, progressing: true } } });
    expect(await get('/readyz')).toEqual({
      status: 200,
      body: { status: 'ok', checks: { running: true, kafka: true, loop: true, progressing: true, redis: true, clickhouse: true } },
    });
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);

    // Traffic, in phases so that one visitor's event time cannot make another's late: two
    // sessions of one visitor, a duplicate and an invalid message; then an event that bridges
    // the two sessions (the later one is retracted, the merged one is written under the first
    // one's id); then a late event; then a visitor active now, whose session stays open.
    await produce(kafka, topic, [ev('a1', 'merge-me', T0), ev('a2', 'merge-me', T0 + 40 * MIN), ev('a2', 'merge-me', T0 + 40 * MIN), { key: 'broken', value: 'not json' }]);
    await waitFor(async () => total(await metrics(), 'sessionizer_sessions_closed_total') >= 2, 60_000, output);
    await produce(kafka, topic, [ev('a3', 'merge-me', T0 + 20 * MIN)]);
    await waitFor(async () => total(await metrics(), 'sessionizer_sessions_merged_total') >= 1, 60_000, output);
    await produce(kafka, topic, [ev('l1', 'late-user', T0 + 5 * 60 * MIN), ev('l2', 'late-user', T0)]);
    await waitFor(async () => total(await metrics(), 'sessionizer_events_late_total') >= 1, 60_000, output);
    await produce(kafka, topic, [ev('n1', 'live-user', Date.now() - 1_000)]);
    await waitFor(async () => total(await metrics(), 'sessionizer_open_sessions') >= 1, 30_000, output);

    const text = await metrics();
    const registered = (await new WorkerMetrics({ defaultMetrics: true }).registry.getMetricsAsJSON()).map((m) => m.name);
    for (const name of registered) expect(text).toContain(`# TYPE ${name} `);
    const value = (name: string) => total(text, name);
    expect(value('sessionizer_events_consumed_total')).toBe(8);
    expect(value('sessionizer_events_valid_total')).toBe(7);
    expect(value('sessionizer_events_invalid_total')).toBe(1);
    expect(value('sessionizer_events_late_total')).toBe(1);
    expect(value('sessionizer_events_duplicate_total')).toBe(1);
    expect(value('sessionizer_sessions_opened_total')).toBeGreaterThanOrEqual(4);
    expect(value('sessionizer_batch_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(value('sessionizer_batch_size_messages_sum')).toBe(8);
    expect(value('sessionizer_clickhouse_flush_duration_seconds_count')).toBeGreaterThan(0);
    expect(value('sessionizer_redis_script_duration_seconds_count')).toBeGreaterThan(0);
    expect(value('sessionizer_rebalances_total')).toBeGreaterThanOrEqual(1);
    expect(value('sessionizer_assigned_partitions')).toBeGreaterThan(0);
    const lag = samples(text).filter((s) => s.name === 'sessionizer_consumer_lag_messages');
    expect(lag.length).toBeGreaterThan(0);
    expect(lag.every((s) => s.labels.includes(`topic="${topic}"`) && s.value === 0)).toBe(true);
    const open = samples(text).filter((s) => s.name === 'sessionizer_open_sessions');
    expect(new Set(open.map((s) => s.labels)).size).toBe(4);
    expect(value('sessionizer_open_sessions')).toBe(1);
    expect(value('sessionizer_process_resident_memory_bytes')).toBeGreaterThan(0);

    // ClickHouse away: readiness degrades (503), liveness stays ok, inserts fail and are retried.
    await proxy.cut();
    await produce(kafka, topic, [ev('x1', 'while-down', T0 + 60 * MIN)]);
    await waitFor(async () => (await get('/readyz')).status === 503, 30_000, output);
    const degraded = await get('/readyz');
    expect(degraded.body.status).toBe('degraded');
    expect(degraded.body.checks).toMatchObject({ clickhouse: false, redis: true, kafka: true });
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    await waitFor(async () => total(await metrics(), 'sessionizer_clickhouse_errors_total') > 0, 30_000, output);
    expect(total(await metrics(), 'sessionizer_retries_total')).toBeGreaterThan(0);
    // A partition that cannot progress past STALL_LIMIT_SECONDS fails liveness, shows in the
    // stalled gauge, and its lag counts the message it could not apply.
    await waitFor(async () => (await get('/healthz')).status === 503, 30_000, output);
    expect((await get('/healthz')).body.checks).toMatchObject({ progressing: false });
    const stuck = await metrics();
    expect(samples(stuck).filter((s) => s.name === 'sessionizer_partition_stalled_seconds').some((s) => s.value >= 5)).toBe(true); // sampled each second
    expect(total(stuck, 'sessionizer_consumer_lag_messages')).toBeGreaterThanOrEqual(1);

    await proxy.open();
    await waitFor(async () => (await get('/readyz')).status === 200, 30_000, output);
    await waitFor(async () => (await get('/healthz')).status === 200, 30_000, output);
    await waitFor(async () => total(await metrics(), 'sessionizer_events_valid_total') === 8, 30_000, output);
    expect(await worker.stop()).toBe(0);
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database} SYNC` });
  });
});
