/**
 * `sessionizer collect`: the first-party HTTP collector (docs/collect.md). Builds the clients
 * from configuration, serves the Segment API and /s.js on COLLECT_PORT and /healthz, /readyz,
 * /metrics on HTTP_PORT (9465 by default), and on SIGTERM/SIGINT stops accepting, drains and exits: 0 after a clean
 * drain, 1 when the drain overran SHUTDOWN_TIMEOUT_SECONDS.
 */
import { Collector } from '../collect/collector';
import type { Config } from '../config';
import { InvalidConfigError } from '../errors';
import { ensureTopic } from '../kafka/event-sender';
import { createKafka } from '../kafka/kafka-client';
import { checkPortFree, HttpEndpoint } from '../observability/http-server';
import { createLogger, secretsOf, type Logger } from '../observability/logger';
import { preflight } from '../preflight';

export async function runCollect(config: Config): Promise<number> {
  if (config.collect.writeKeys.size === 0 && config.collect.plausibleDomains.size === 0) {
    throw new InvalidConfigError('invalid configuration: collect needs COLLECT_WRITE_KEYS (key:site,…) or COLLECT_PLAUSIBLE_DOMAINS (domain:site,…)');
  }
  const log = createLogger(config.logLevel, undefined, { secrets: secretsOf(config) }).child({ command: 'collect' });
  // Both ports before anything connects: one that cannot be bound stops the collector at once.
  const endpoint = await HttpEndpoint.listen(config.http.collectPort);
  try {
    await checkPortFree(config.collect.port, 'COLLECT_PORT', config.collect.host);
    return await runWithEndpoint(config, log, endpoint);
  } finally {
    endpoint.close();
  }
}

async function runWithEndpoint(config: Config, log: Logger, endpoint: HttpEndpoint): Promise<number> {
  // Kafka (and the topic) must answer at start, or one line says why, as for the worker. Redis is
  // not checked: the collector serves without it (cookieless requests get 503 + Retry-After).
  await preflight(config, { kafka: { topics: [config.collect.topic] } }, log);
  const kafka = createKafka(config.kafka, log);
  if (config.kafka.createTopics) await ensureTopic(kafka, config.collect.topic, config.kafka.topicPartitions);
  const collector = await Collector.start({
    config: config.collect,
    kafka,
    redis: config.redis,
    sessionTimeoutMs: config.sessions.timeoutMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    log,
    keyEvents: config.keyEvents,
  });
  endpoint.serve(collector, collector.metrics.registry);
  log.info({ port: endpoint.port }, 'http endpoint listening');
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'shutting down: draining');
  const clean = await collector.stop();
  log.info({ clean, produced: collector.delivery.producedTotal }, clean ? 'collector stopped' : 'shutdown bound reached; exiting');
  return clean ? 0 : 1;
}
