/**
 * `npm run bench:collect`: throughput and latency of one `sessionizer collect` process (built
 * dist/, its own process) producing to a local Kafka, loaded with autocannon.
 *
 *  1. batched: `POST /v1/batch` with BENCH_BATCH (default 100) server-side track calls per
 *     request, BENCH_BATCH_CONNECTIONS (default 16) connections → events/s;
 *  2. single: `POST /v1/page` as the browser script sends it (text/plain, write key in the body,
 *     a browser User-Agent, no id: a cookieless id, device and geo enrichment), each from its
 *     own public address (X-Forwarded-For from a trusted proxy), BENCH_SINGLE_CONNECTIONS
 *     (default 32) connections → requests/s, p50/p99.
 * Each for BENCH_SECONDS (default 15) after a 3 s warm-up. CPU of the collector process is read
 * from /proc before and after each phase → CPU per 1,000 events. Every answer must be 200.
 * Targets (BENCHMARKS.md): ≥ 20,000 events/s batched, ≥ 5,000 requests/s single with p99 < 50 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { deleteRedisKeys } from '../test/support/isolation';
import { resolveServices } from '../test/support/resolve-services';
import { processCpuSeconds } from './stats';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const BATCH_CONNECTIONS = Number(process.env.BENCH_BATCH_CONNECTIONS ?? 16);
const SINGLE_CONNECTIONS = Number(process.env.BENCH_SINGLE_CONNECTIONS ?? 32);
const KEY = 'wk_bench';
const AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
];

const log = (line: string) => process.stdout.write(`${line}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  const services = await resolveServices((line) => process.stderr.write(`[services] ${line}\n`));
  Object.assign(process.env, services.env);
  const brokers = (process.env.KAFKA_BROKERS as string).split(',');
  const kafka = new Kafka({ clientId: 'bench-collect', brokers, logLevel: logLevel.NOTHING });
  const topic = `bench_collect_${Date.now().toString(36)}`;
  const prefix = `${topic}:`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  log(`machine: ${cpus().length}× ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  const port = await freePort();
  const opsPort = await freePort();
  // BENCH_COLLECT_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the collector.
  const nodeArgs = (process.env.BENCH_COLLECT_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(__dirname, '..', 'dist', 'cli.js'), 'collect'], {
    env: {
      ...process.env,
      KAFKA_TOPICS: topic,
      REDIS_KEY_PREFIX: prefix.slice(0, -1),
      COLLECT_WRITE_KEYS: `${KEY}:bench-site`,
      COLLECT_PORT: String(port),
      COLLECT_HOST: '127.0.0.1',
      HTTP_PORT: String(opsPort),
      COLLECT_RATE_LIMIT_PER_IP: '0',
      COLLECT_RATE_LIMIT_PER_KEY: '0',
      COLLECT_QUEUE_MAX_EVENTS: '200000',
      COLLECT_TRUSTED_PROXIES: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const redis = new Redis(process.env.REDIS_URL as string);
  try {
    await waitReady(`http://127.0.0.1:${opsPort}/readyz`, child);
    const url = `http://127.0.0.1:${port}`;

    const batchBody = (n: number) =>
      JSON.stringify({
        batch: Array.from({ length: BATCH }, (_, i) => ({
          type: 'track',
          event: 'Order Completed',
          userId: `u-${(n * BATCH + i) % 50_000}`,
          messageId: `b-${n}-${i}`,
          timestamp: '2026-03-01T10:00:00.000Z',
          properties: { total: 42.5, sku: 'sku-123', store: 'Lyon-2' },
        })),
      });
    const bodies = Array.from({ length: 64 }, (_, n) => batchBody(n));
    let next = 0;
    const batched = await phase(child, 'batched', {
      url: `${url}/v1/batch`,
      connections: BATCH_CONNECTIONS,
      requests: [
        {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${KEY}:`).toString('base64')}`, 'content-type': 'application/json', 'user-agent': 'bench-server/1' },
          setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
        },
      ],
    });
    report('batched', batched, BATCH);

    // Many visitors behind a trusted proxy (X-Forwarded-For names each one's address), with the
    // few User-Agents real traffic is made of.
    let visitor = 0;
    const single = await phase(child, 'single', {
      url: `${url}/v1/page`,
      connections: SINGLE_CONNECTIONS,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => {
            visitor += 1;
            const body = JSON.stringify({ writeKey: KEY, messageId: `p-${visitor}`, name: 'Pricing', context: { page: { url: 'https://shop.example/pricing?utm_source=news', path: '/pricing', title: 'Pricing', referrer: 'https://www.google.com/' } } });
            const ip = `198.51.${(visitor >> 8) & 255}.${visitor & 255}`;
            return { ...req, body, headers: { 'content-type': 'text/plain;charset=UTF-8', 'user-agent': AGENTS[visitor % AGENTS.length] as string, 'x-forwarded-for': ip } };
          },
        },
      ],
    });
    report('single', single, 1);
    log(`(${cpus().length} cores shared by the collector, Kafka, Redis, autocannon itself and other workloads on this machine; load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await deleteRedisKeys(redis, prefix);
    redis.disconnect();
  }
}

interface Phase {
  result: Result;
  cpuSeconds: number | null;
}

async function phase(child: ChildProcess, title: string, options: autocannon.Options): Promise<Phase> {
  // Warm-up: JIT, connections, the producer's first requests.
  await autocannon({ ...options, duration: 3 });
  const before = processCpuSeconds(child.pid);
  const result = await autocannon({ ...options, duration: SECONDS });
  const after = processCpuSeconds(child.pid);
  log(`${title}: done`);
  return { result, cpuSeconds: before === null || after === null ? null : after - before };
}

function report(title: string, { result, cpuSeconds }: Phase, eventsPerRequest: number): void {
  const ok = result['2xx'];
  const seconds = result.duration;
  const events = ok * eventsPerRequest;
  const failed = result.non2xx + result.errors + result.timeouts;
  log(
    `${title}: ${Math.round(ok / seconds)} requests/s, ${Math.round(events / seconds)} events/s (${eventsPerRequest}/request), ` +
      `latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms; ` +
      `${failed} not 200 (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}); ` +
      `collector CPU ${cpuSeconds === null ? '?' : `${cpuSeconds.toFixed(1)} s = ${((cpuSeconds * 1000) / (events / 1000)).toFixed(1)} ms per 1,000 events`}`,
  );
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`collector exited with ${child.exitCode}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error('collector not ready after 60 s');
    await new Promise((r) => setTimeout(r, 300));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:collect failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
