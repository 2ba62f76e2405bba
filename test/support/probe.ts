/**
 * Checks that services given through the environment answer, so a stale `export` (say, left
 * from a `services:up` whose servers have since stopped) fails the run at once with a clear
 * message instead of every test timing out on its own.
 */
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import type { ServiceName } from '../../deploy/local/service';

const ATTEMPTS_MS = 10_000;

async function kafkaAnswers(): Promise<void> {
  const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function redisAnswers(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? '', { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // reported through the rejected ping
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

async function clickhouseAnswers(): Promise<void> {
  const client = createClient({
    url: process.env.CLICKHOUSE_URL,
    username: process.env.CLICKHOUSE_USER ?? 'default',
    password: process.env.CLICKHOUSE_PASSWORD ?? '',
    log: { level: ClickHouseLogLevel.OFF }, // failures are reported below, once
  });
  try {
    // A query, not just /ping, so wrong credentials show up here too.
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
  } finally {
    await client.close();
  }
}

const probes: Record<ServiceName, () => Promise<void>> = {
  kafka: kafkaAnswers,
  redis: redisAnswers,
  clickhouse: clickhouseAnswers,
};

/** Resolves when the service answers; retries for a few seconds (it may be starting). */
export async function expectAnswers(name: ServiceName, variable: string): Promise<void> {
  const deadline = Date.now() + ATTEMPTS_MS;
  for (;;) {
    try {
      await probes[name]();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(
          `${variable}=${process.env[variable]} is set but ${name} does not answer there (${reason}). ` +
            `Start it (eval "$(npm run -s services:up)"), or unset ${variable} to let the tests start one.`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
