/**
 * Shared pieces of the collector's unit tests: a configuration, an in-memory sender standing in
 * for the Kafka producer (the HTTP behaviour is under test here; test/integration/collect-*.int.test.ts
 * run the real producer against the real broker), and an app built from them.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CollectConfig } from '../../src/config';
import { Delivery, deliveryOptions, type OutgoingEvent, type Sender } from '../../src/collect/delivery';
import { CollectMetrics } from '../../src/collect/metrics';
import { buildCollectorApp } from '../../src/collect/server';
import type { VisitorIds } from '../../src/collect/visitor-ids';
import type { GeoLookup } from '../../src/collect/geo';
import { createLogger } from '../../src/observability/logger';

export const KEY = 'wk_test';
export const AUTH = `Basic ${Buffer.from(`${KEY}:`).toString('base64')}`;
export const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

export function collectConfig(overrides: Partial<CollectConfig> = {}): CollectConfig {
  return {
    writeKeys: new Map([[KEY, 'site-1']]),
    plausibleDomains: new Map(),
    port: 0,
    host: '127.0.0.1',
    topic: 'events',
    trustedProxies: [],
    maxMessageBytes: 32 * 1024,
    maxBatchBytes: 500 * 1024,
    queueMaxEvents: 10_000,
    produceBatchEvents: 1_000,
    ackTimeoutMs: 2_000,
    retryAfterSeconds: 5,
    rateLimit: { windowMs: 60_000, perKey: 0, perIp: 0 },
    geoipDatabases: [],
    cookieless: false,
    ...overrides,
  };
}

/** Keeps what it is given; fails while `failing` is set; waits `delayMs` per send. */
export class MemorySender implements Sender {
  readonly sent: OutgoingEvent[] = [];
  sends = 0;
  failing = false;
  delayMs = 0;

  async send(_topic: string, messages: OutgoingEvent[]): Promise<void> {
    this.sends += 1;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failing) throw new Error('broker unreachable');
    this.sent.push(...messages);
  }

  events(): Array<Record<string, unknown>> {
    return this.sent.map((m) => JSON.parse(m.value) as Record<string, unknown>);
  }
}

export interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): { success: boolean; message?: string };
}

export interface Call {
  method?: 'GET' | 'POST' | 'OPTIONS';
  url: string;
  headers?: Record<string, string>;
  payload?: unknown;
}

export interface TestApp {
  app: FastifyInstance;
  sender: MemorySender;
  delivery: Delivery;
  metrics: CollectMetrics;
  /** One real HTTP request to the app (listening on a free loopback port). */
  call(call: Call): Promise<Answer>;
}

export async function testApp(
  overrides: Partial<CollectConfig> = {},
  extra: { visitorIds?: VisitorIds; geo?: GeoLookup; now?: () => number; keyEvents?: string[] } = {},
): Promise<TestApp> {
  const config = collectConfig(overrides);
  const sender = new MemorySender();
  const delivery = new Delivery(sender, deliveryOptions(config));
  const metrics = new CollectMetrics({ queueDepth: () => delivery.depth });
  const app = await buildCollectorApp({
    config,
    delivery,
    visitorIds: extra.visitorIds ?? null,
    geo: extra.geo ?? null,
    metrics,
    log: createLogger('silent'),
    now: extra.now,
    keyEvents: extra.keyEvents,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const call = async ({ method = 'POST', url, headers = {}, payload }: Call): Promise<Answer> => {
    const isRaw = typeof payload === 'string' || Buffer.isBuffer(payload);
    const body = payload === undefined ? undefined : isRaw ? (payload as string | Buffer) : JSON.stringify(payload);
    const res = await fetch(base + url, {
      method,
      headers: { ...(isRaw || payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body,
    });
    const text = await res.text();
    return { statusCode: res.status, headers: Object.fromEntries(res.headers.entries()), body: text, json: () => JSON.parse(text) };
  };
  return { app, sender, delivery, metrics, call };
}

/** The value of one sample of a metric (0 when absent). */
export async function metricValue(metrics: CollectMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const sample = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return sample?.value ?? 0;
}
