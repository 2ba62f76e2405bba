/**
 * Checks, before a command starts its work, that the services it needs answer: within
 * CONNECT_TIMEOUT_SECONDS (15 s by default), else one line naming the service, its address and
 * what to check (`ServiceUnavailableError`), with the client's own error in the debug log.
 * Probes of several services run at once, so the bound holds for all of them together.
 */
import type { Logger } from 'pino';
import type { Config } from '../config';
import { probeClickHouse } from './clickhouse-probe';
import { probeKafka } from './kafka-probe';
import { probeRedis } from './redis-probe';

export interface Needs {
  kafka?: boolean | { topics: readonly string[] };
  redis?: boolean;
  clickhouse?: boolean;
}

export async function preflight(config: Config, needs: Needs, log: Logger): Promise<void> {
  const timeoutMs = config.connectTimeoutMs;
  const checks: Array<Promise<unknown>> = [];
  if (needs.kafka) {
    const topics = typeof needs.kafka === 'object' ? needs.kafka.topics : undefined;
    checks.push(probeKafka(config.kafka, { topics, timeoutMs, log }));
  }
  if (needs.redis) checks.push(probeRedis(config.redis, { timeoutMs, log }));
  if (needs.clickhouse) checks.push(probeClickHouse(config.clickhouse, { timeoutMs, log }));
  // Report the first failure in a fixed order (Kafka, Redis, ClickHouse), once all are settled.
  const results = await Promise.allSettled(checks);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

export { probeClickHouse, probeKafka, probeRedis };
export { clickhouseAddress } from './clickhouse-probe';
export { redisAddress } from './redis-probe';
