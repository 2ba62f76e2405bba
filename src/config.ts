/**
 * Configuration of the long-running commands (`worker`, `migrate`, `produce`, `report`): read
 * from the environment once at start-up, validated by zod, and passed down. No other module
 * reads `process.env`. Every option is documented in README.md ("Configuration").
 *
 * A secret may also come from a mounted file: `X_FILE=/path` is read when `X` is unset, so
 * Kubernetes and Docker secrets never have to sit in the environment.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InvalidConfigError } from './errors';

const csv = z
  .string()
  .transform((s) => s.split(',').map((part) => part.trim()).filter(Boolean))
  .pipe(z.array(z.string().min(1)).min(1));
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((s) => s === 'true' || s === '1' || s === 'yes');
const int = (min: number) => z.coerce.number().int().min(min);
const positive = z.coerce.number().positive();

/** `host:port`, or `[v6]:port`: what kafkajs accepts as a bootstrap broker (no scheme, a port). */
const BROKER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;
/** Kafka's own rule for topic names. */
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

const brokers = csv.superRefine((list, ctx) => {
  for (const broker of list) {
    const match = BROKER.exec(broker);
    const port = match ? Number(match[1]) : 0;
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `'${broker}' is not host:port (for example kafka-1:9092; no scheme)` });
    }
  }
});
const topicName = z.string().regex(TOPIC, 'a topic name is 1-249 of A-Z a-z 0-9 . _ -');
const topics = csv.pipe(z.array(topicName));

export const configSchema = z.object({
  KAFKA_BROKERS: brokers.default(['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: z.string().min(1).default('sessionizer'),
  KAFKA_GROUP_ID: z.string().min(1).default('sessionizer'),
  KAFKA_TOPICS: topics.default(['events']),
  KAFKA_DEAD_LETTER_TOPIC: topicName.default('events.dead-letter'),
  KAFKA_CREATE_TOPICS: bool.default(false),
  KAFKA_TOPIC_PARTITIONS: int(1).default(12),
  KAFKA_SSL: bool.default(false),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  KAFKA_BATCH_MAX_BYTES: int(1024).default(8 * 1024 * 1024),
  KAFKA_MAX_WAIT_MS: int(10).default(500),

  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_USERNAME: z.string().optional(),
  REDIS_TLS: bool.default(false),
  REDIS_KEY_PREFIX: z.string().min(1).default('sz'),
  STATE_TTL_DAYS: positive.default(7),
  USER_RECORD_TTL_DAYS: positive.default(400),

  CLICKHOUSE_URL: z.string().url().default('http://127.0.0.1:8123'),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier')
    .default('sessionizer'),
  CLICKHOUSE_CLUSTER: z.string().default(''),
  EVENTS_TTL_DAYS: int(0).default(400),

  SESSION_TIMEOUT_MINUTES: positive.default(30),
  ALLOWED_LATENESS_MINUTES: z.coerce.number().min(0).default(60),
  CLOSE_DELAY_SECONDS: z.coerce.number().min(0).default(2),
  MAX_CLOCK_SKEW_MINUTES: z.coerce.number().min(0).default(5),

  HTTP_PORT: int(0).max(65535).default(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_SECONDS: positive.default(30),
  CONNECT_TIMEOUT_SECONDS: positive.default(15),
});

export type RawConfig = z.output<typeof configSchema>;

export interface Config {
  kafka: {
    brokers: string[];
    clientId: string;
    groupId: string;
    topics: string[];
    deadLetterTopic: string;
    createTopics: boolean;
    topicPartitions: number;
    ssl: boolean;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
    batchMaxBytes: number;
    maxWaitMs: number;
  };
  redis: { url: string; username?: string; password?: string; tls: boolean; keyPrefix: string; stateTtlSeconds: number; userRecordTtlSeconds: number };
  clickhouse: { url: string; username: string; password: string; database: string; cluster: string };
  /** Days raw events are kept in ClickHouse (the events table's TTL); 0 keeps them forever. */
  eventsTtlDays: number;
  sessions: { timeoutMs: number; latenessMs: number; closeDelayMs: number; maxClockSkewMs: number };
  http: { port: number };
  logLevel: RawConfig['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  /** How long a command tries to reach a service before it gives up with a one-line reason. */
  connectTimeoutMs: number;
}

const SECRET_NAMES = ['KAFKA_SASL_PASSWORD', 'REDIS_PASSWORD', 'CLICKHOUSE_PASSWORD'] as const;

/** Reads and validates the configuration; throws `InvalidConfigError` listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const source: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_NAMES) {
    const file = env[`${name}_FILE`];
    if (source[name] === undefined && file) source[name] = readSecretFile(name, file);
  }
  for (const key of Object.keys(source)) if (source[key] === '') delete source[key];

  const parsed = configSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new InvalidConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const c = parsed.data;
  if (c.KAFKA_SASL_MECHANISM && (!c.KAFKA_SASL_USERNAME || !c.KAFKA_SASL_PASSWORD)) {
    throw new InvalidConfigError('invalid configuration: KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD');
  }
  return {
    kafka: {
      brokers: c.KAFKA_BROKERS,
      clientId: c.KAFKA_CLIENT_ID,
      groupId: c.KAFKA_GROUP_ID,
      topics: c.KAFKA_TOPICS,
      deadLetterTopic: c.KAFKA_DEAD_LETTER_TOPIC,
      createTopics: c.KAFKA_CREATE_TOPICS,
      topicPartitions: c.KAFKA_TOPIC_PARTITIONS,
      ssl: c.KAFKA_SSL,
      sasl: c.KAFKA_SASL_MECHANISM
        ? { mechanism: c.KAFKA_SASL_MECHANISM, username: c.KAFKA_SASL_USERNAME ?? '', password: c.KAFKA_SASL_PASSWORD ?? '' }
        : undefined,
      batchMaxBytes: c.KAFKA_BATCH_MAX_BYTES,
      maxWaitMs: c.KAFKA_MAX_WAIT_MS,
    },
    redis: {
      url: c.REDIS_URL,
      username: c.REDIS_USERNAME,
      password: c.REDIS_PASSWORD,
      // A rediss:// URL means TLS by itself; REDIS_TLS turns it on for a redis:// URL.
      tls: c.REDIS_TLS || c.REDIS_URL.startsWith('rediss:'),
      keyPrefix: c.REDIS_KEY_PREFIX,
      stateTtlSeconds: Math.ceil(c.STATE_TTL_DAYS * 86_400),
      userRecordTtlSeconds: Math.ceil(c.USER_RECORD_TTL_DAYS * 86_400),
    },
    clickhouse: {
      url: c.CLICKHOUSE_URL,
      username: c.CLICKHOUSE_USER,
      password: c.CLICKHOUSE_PASSWORD,
      database: c.CLICKHOUSE_DATABASE,
      cluster: c.CLICKHOUSE_CLUSTER,
    },
    eventsTtlDays: c.EVENTS_TTL_DAYS,
    sessions: {
      timeoutMs: c.SESSION_TIMEOUT_MINUTES * 60_000,
      latenessMs: c.ALLOWED_LATENESS_MINUTES * 60_000,
      closeDelayMs: c.CLOSE_DELAY_SECONDS * 1000,
      maxClockSkewMs: c.MAX_CLOCK_SKEW_MINUTES * 60_000,
    },
    http: { port: c.HTTP_PORT },
    logLevel: c.LOG_LEVEL,
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    connectTimeoutMs: c.CONNECT_TIMEOUT_SECONDS * 1000,
  };
}

/**
 * The session timeout alone, for offline `recompute`, which needs no service and so must not
 * fail on, say, a bad KAFKA_BROKERS: SESSION_TIMEOUT_MINUTES validated by the same rule as in
 * `loadConfig`. Returns minutes.
 */
export function loadSessionTimeoutMinutes(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.SESSION_TIMEOUT_MINUTES;
  const parsed = configSchema.shape.SESSION_TIMEOUT_MINUTES.safeParse(value === '' ? undefined : value);
  if (!parsed.success) {
    throw new InvalidConfigError(`invalid configuration: SESSION_TIMEOUT_MINUTES: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  return parsed.data;
}

function readSecretFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new InvalidConfigError(`invalid configuration: ${name}_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** HTTP_PORT alone, for the image's health check (src/healthcheck.ts); the default when unset or invalid. */
export function loadHttpPort(env: NodeJS.ProcessEnv = process.env): number {
  const parsed = configSchema.shape.HTTP_PORT.safeParse(env.HTTP_PORT === '' ? undefined : env.HTTP_PORT);
  return parsed.success ? parsed.data : 9464;
}
