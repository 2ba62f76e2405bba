/**
 * `sessionizer worker`: builds the clients from configuration, starts the consumer and the
 * health/metrics endpoint, and maps the outcome to an exit code: 0 after SIGTERM/SIGINT and a
 * clean shutdown, 1 when the worker gives up (crash loop) or shutdown overruns its bound.
 */
import { createClickHouseClient } from '../clickhouse/client';
import { eventRowOf } from '../clickhouse/event-row';
import { ClickHouseSink } from '../clickhouse/session-sink';
import { StoredSessions } from '../clickhouse/stored-sessions';
import type { Config } from '../config';
import { createKafka } from '../kafka/kafka-client';
import { HttpEndpoint } from '../observability/http-server';
import { createLogger, secretsOf, type Logger } from '../observability/logger';
import { preflight } from '../preflight';
import { WorkerMetrics } from '../observability/metrics';
import { PartitionStateStore } from '../state/partition-state-store';
import { createRedisClient } from '../state/redis-client';
import { defineStateCommands } from '../state/script-loader';
import { Worker } from '../worker/worker';

export async function runWorker(config: Config): Promise<number> {
  const log = createLogger(config.logLevel, undefined, { secrets: secretsOf(config) });
  // The port first: a second worker on the machine stops here, before it connects to anything.
  const endpoint = await HttpEndpoint.listen(config.http.port);
  try {
    return await runWithEndpoint(config, log, endpoint);
  } finally {
    endpoint.close();
  }
}

async function runWithEndpoint(config: Config, log: Logger, endpoint: HttpEndpoint): Promise<number> {
  // Fail in seconds, with one line naming what is missing, rather than after a minute of
  // client retries; the dead-letter topic must exist too, or the first invalid event would stall.
  await preflight(config, { kafka: { topics: [...config.kafka.topics, config.kafka.deadLetterTopic] }, redis: true, clickhouse: true }, log);
  const metrics = new WorkerMetrics({ defaultMetrics: true });
  // Commands wait (queued) while Redis is away; our retry loop decides when to give up.
  const redis = defineStateCommands(createRedisClient(config.redis, { maxRetriesPerRequest: null }));
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const clickhouse = createClickHouseClient(config.clickhouse);
  const ttl = { activeSeconds: config.redis.stateTtlSeconds, idleSeconds: config.redis.userRecordTtlSeconds };
  const replicaAck = { replicas: config.redis.waitReplicas ?? 0, timeoutMs: config.redis.waitTimeoutMs ?? 1000 };
  const worker = new Worker(config, {
    kafka: createKafka(config.kafka, log),
    log,
    metrics,
    storeFor: (topic, partition) => new PartitionStateStore(redis, config.redis.keyPrefix, topic, partition, ttl, replicaAck),
    sink: new ClickHouseSink(clickhouse, config.clickhouse.database),
    storedSessions: new StoredSessions(clickhouse, config.clickhouse.database),
    eventRow: eventRowOf,
    // Not connected: down at once, rather than a PING queued until Redis is back.
    pingRedis: async () => redis.status === 'ready' && (await redis.ping()) === 'PONG',
    pingClickHouse: async () => (await clickhouse.ping()).success,
  });
  endpoint.serve(worker, metrics.registry);
  log.info({ port: endpoint.port, database: config.clickhouse.database }, 'http endpoint listening');

  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'shutting down');
    worker.stop().catch((err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  let failure: unknown = null;
  try {
    await worker.start();
    failure = await worker.done;
  } catch (err) {
    failure = err;
    log.fatal({ err }, 'worker failed to start');
  } finally {
    redis.disconnect();
    await clickhouse.close();
  }
  // The JSON log has the detail; a person at a terminal gets one line saying why and what to do.
  if (failure) process.stderr.write(`sessionizer: worker stopped: ${oneLine(failure)}\n`);
  return failure ? 1 : 0;
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]?.trim() || (err instanceof Error ? err.name : 'unknown error');
}
