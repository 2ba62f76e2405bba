/**
 * A running collector: the fastify app plus what it needs (Kafka producer, Redis for salts,
 * geo database), with an orderly stop — refuse new requests, let the ones in progress finish
 * (each waits for Kafka's acknowledgement), drain the queue, then close the clients — bounded in
 * time. Used by `sessionizer collect` and by the tests, which inject the clock.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { CollectConfig, Config } from '../config';
import type { HealthReport, HealthSource } from '../observability/http-server';
import { Delivery, KafkaSender, deliveryOptions } from './delivery';
import { bundledDatabases, GeoLookup } from './geo';
import { CollectMetrics } from './metrics';
import { SaltStore } from './salt-store';
import { buildCollectorApp } from './server';
import { VisitorIds } from './visitor-ids';

export interface CollectorOptions {
  config: CollectConfig;
  kafka: Kafka;
  redis: { url: string; username?: string; password?: string; tls: boolean; keyPrefix: string };
  sessionTimeoutMs: number;
  shutdownTimeoutMs: number;
  log: Logger;
  keyEvents?: readonly string[];
  metrics?: CollectMetrics;
  now?: () => number;
}

export class Collector implements HealthSource {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly app: FastifyInstance,
    readonly delivery: Delivery,
    readonly metrics: CollectMetrics,
    private readonly sender: KafkaSender,
    private readonly redis: Redis,
    private readonly options: CollectorOptions,
  ) {}

  static async start(options: CollectorOptions): Promise<Collector> {
    const { config, log } = options;
    const redis = new Redis(options.redis.url, {
      username: options.redis.username,
      password: options.redis.password,
      tls: options.redis.tls ? {} : undefined,
      // A request must not wait for Redis forever: fail it (503) and let the client retry.
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
    });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
    const geoFiles = config.geoipDatabases === 'bundled' ? bundledDatabases() : config.geoipDatabases;
    const geo = geoFiles.length > 0 ? await GeoLookup.open(geoFiles) : null;
    const sender = await KafkaSender.connect(options.kafka);
    const depth = { of: (): number => 0 };
    const metrics = options.metrics ?? new CollectMetrics({ defaultMetrics: true, queueDepth: () => depth.of() });
    const delivery = new Delivery(sender, {
      ...deliveryOptions(config),
      onProduced: (_events, seconds) => metrics.produceSeconds.observe(seconds),
      onFailed: (err) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'produce failed; refusing requests for a while'),
    });
    depth.of = () => delivery.depth;
    const visitorIds = config.cookieless
      ? new VisitorIds(new SaltStore(redis, options.redis.keyPrefix.endsWith(':') ? options.redis.keyPrefix : `${options.redis.keyPrefix}:`), {
          timeoutMs: options.sessionTimeoutMs,
          now: options.now,
        })
      : null;
    const app = await buildCollectorApp({ config, delivery, visitorIds, geo, metrics, log, keyEvents: options.keyEvents, now: options.now });
    await app.listen({ port: config.port, host: config.host });
    const sites = new Set([...config.writeKeys.values(), ...config.plausibleDomains.values()]).size;
    log.info(
      { port: (app.server.address() as AddressInfo).port, topic: config.topic, sites, writeKeys: config.writeKeys.size, plausibleDomains: config.plausibleDomains.size, geo: geoFiles.length > 0 },
      'collector listening',
    );
    return new Collector(app, delivery, metrics, sender, redis, options);
  }

  get port(): number {
    return (this.app.server.address() as AddressInfo).port;
  }

  health(): HealthReport {
    return { status: this.stopping ? 'degraded' : 'ok', checks: { listening: this.app.server.listening } };
  }

  async readiness(): Promise<HealthReport> {
    const redis = await this.redis.ping().then((r) => r === 'PONG', () => false);
    const checks = { accepting: !this.stopping, kafka: this.delivery.available, redis };
    return { status: Object.values(checks).every(Boolean) ? 'ok' : 'error', checks };
  }

  /** Stops accepting, finishes what was accepted, closes; resolves false when the bound ran out. */
  async stop(): Promise<boolean> {
    const bound = this.options.shutdownTimeoutMs;
    this.stopping ??= (async () => {
      // fastify answers new requests 503 from now on and waits for the ones in progress.
      await Promise.all([this.app.close(), this.delivery.drain()]);
      await this.sender.disconnect().catch(() => undefined);
      this.redis.disconnect();
    })();
    let timer: NodeJS.Timeout | undefined;
    const outOfTime = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), bound)));
    const result = await Promise.race([this.stopping.then(() => true as const), outOfTime]);
    clearTimeout(timer);
    return result;
  }
}

export type { Config };
