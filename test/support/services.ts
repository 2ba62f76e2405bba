/**
 * Where the integration tests' services are, and clients for them. The addresses come from the
 * environment that global setup prepared (docs/services.md); these functions only read it.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { requireEnv } from './service-env';

export interface KafkaConnection {
  brokers: string[];
}

export interface ClickHouseConnection {
  url: string;
  username: string;
  password: string;
}

/** Async so a later version may start or check the broker lazily without changing callers. */
export async function getKafka(): Promise<KafkaConnection> {
  const brokers = requireEnv('KAFKA_BROKERS')
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker !== '');
  return { brokers };
}

export function getRedisUrl(): string {
  return requireEnv('REDIS_URL');
}

export async function getClickHouse(): Promise<ClickHouseConnection> {
  return {
    url: requireEnv('CLICKHOUSE_URL'),
    username: process.env.CLICKHOUSE_USER ?? 'default',
    password: process.env.CLICKHOUSE_PASSWORD ?? '',
  };
}

/** A kafkajs client for the test broker; kafkajs's own logging is off unless KAFKAJS_LOG_LEVEL is set. */
export async function createKafka(clientId = 'sessionizer-test'): Promise<Kafka> {
  const { brokers } = await getKafka();
  const level = process.env.KAFKAJS_LOG_LEVEL?.toUpperCase() as keyof typeof logLevel | undefined;
  return new Kafka({ clientId, brokers, logLevel: level ? logLevel[level] : logLevel.NOTHING });
}

/** An ioredis client for the test Redis; close it with `quit()`. */
export function createRedis(): Redis {
  return new Redis(getRedisUrl(), { lazyConnect: false, maxRetriesPerRequest: 3 });
}

/**
 * A @clickhouse/client for the test ClickHouse, optionally bound to one database. The client's
 * own logging is off (it logs every failed request, including the ones a test expects to fail;
 * the rejection carries the same information) unless CLICKHOUSE_LOG_LEVEL is set.
 */
export async function createClickHouseClient(database?: string): Promise<ClickHouseClient> {
  const { url, username, password } = await getClickHouse();
  const levels: Record<string, ClickHouseLogLevel> = {
    TRACE: ClickHouseLogLevel.TRACE,
    DEBUG: ClickHouseLogLevel.DEBUG,
    INFO: ClickHouseLogLevel.INFO,
    WARN: ClickHouseLogLevel.WARN,
    ERROR: ClickHouseLogLevel.ERROR,
  };
  const level = levels[process.env.CLICKHOUSE_LOG_LEVEL?.toUpperCase() ?? ''] ?? ClickHouseLogLevel.OFF;
  return createClient({ url, username, password, database, log: { level } });
}
