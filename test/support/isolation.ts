/**
 * Keeping tests apart on shared servers: every test file (and every Jest worker, and every
 * concurrent run against the same servers) uses names nobody else uses, and removes what it made.
 */
import crypto from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { createClickHouseClient } from './services';

let counter = 0;

/**
 * `<prefix>_<time>_<pid>_<n>_<random>`, lower case letters, digits and `_` only: valid unquoted
 * as a Kafka topic, a consumer group id, a Redis key part and a ClickHouse database or table name.
 */
export function uniqueName(prefix = 'test'): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_').replace(/^([^a-z_])/, '_$1');
  counter += 1;
  const parts = [Date.now().toString(36), process.pid.toString(36), counter.toString(36), crypto.randomBytes(3).toString('hex')];
  return `${clean}_${parts.join('_')}`;
}

/** A key prefix ending in `:`, for everything one test writes to Redis. */
export function newRedisPrefix(prefix = 'test'): string {
  return `${uniqueName(prefix)}:`;
}

/** Deletes every key under `prefix` (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deleteRedisKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Creates a database with a unique name and returns the name. */
export async function createTestDatabase(client: ClickHouseClient, prefix = 'test'): Promise<string> {
  const database = uniqueName(prefix);
  await client.command({ query: `CREATE DATABASE ${database}` });
  return database;
}

export async function dropTestDatabase(client: ClickHouseClient, database: string): Promise<void> {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database} SYNC` });
}

export interface TestDatabase {
  /** The database's name (valid before the first test runs, i.e. from beforeAll on). */
  readonly name: string;
  /** A client whose default database is this one. */
  readonly client: ClickHouseClient;
}

/**
 * A fresh ClickHouse database for the calling test file: created in beforeAll, dropped (and the
 * client closed) in afterAll. Call it at the top of a describe block or file.
 */
export function useTestDatabase(prefix = 'test'): TestDatabase {
  let name: string | undefined;
  let client: ClickHouseClient | undefined;
  beforeAll(async () => {
    const admin = await createClickHouseClient();
    try {
      name = await createTestDatabase(admin, prefix);
    } finally {
      await admin.close();
    }
    client = await createClickHouseClient(name);
  });
  afterAll(async () => {
    if (client && name) {
      await dropTestDatabase(client, name);
      await client.close();
    }
  });
  return {
    get name(): string {
      if (!name) throw new Error('useTestDatabase(): the database exists from beforeAll on');
      return name;
    },
    get client(): ClickHouseClient {
      if (!client) throw new Error('useTestDatabase(): the client exists from beforeAll on');
      return client;
    },
  };
}
