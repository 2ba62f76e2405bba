/**
 * Configuration of the long-running commands (`worker`, `collect`, `dashboard`, `migrate`, `produce`, `report`): read
 * from the environment once at start-up, validated by zod, and passed down. No other module
 * reads `process.env`. Every option is documented in README.md ("Configuration").
 *
 * A secret may also come from a mounted file: `X_FILE=/path` is read when `X` is unset, so
 * Kubernetes and Docker secrets never have to sit in the environment.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { plausibleDomainKey } from './collect/plausible';
import { InvalidConfigError } from './errors';
import { DEFAULT_SITE, isValidSite } from './events/visitor-key';

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

/**
 * `topic:site,…`: the site of the events of a topic that name none. Each entry must be a topic
 * name and a site name; a topic may be listed once (two sites for one topic would be a guess).
 */
const topicSites = csv
  .transform((entries, ctx) => {
    const sites = new Map<string, string>();
    for (const entry of entries) {
      const at = entry.lastIndexOf(':');
      const topic = at < 0 ? '' : entry.slice(0, at).trim();
      const site = at < 0 ? '' : entry.slice(at + 1).trim();
      if (!TOPIC.test(topic) || !isValidSite(site)) {
        ctx.addIssue({ code: 'custom', message: `'${entry}' is not topic:site (a site is 1-64 of a-z 0-9 . _ -, starting with a letter or a digit)` });
      } else if (sites.has(topic)) {
        ctx.addIssue({ code: 'custom', message: `topic '${topic}' is listed twice` });
      } else {
        sites.set(topic, site);
      }
    }
    return sites;
  });

export const configSchema = z.object({
  KAFKA_BROKERS: brokers.default(['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: z.string().min(1).default('sessionizer'),
  KAFKA_GROUP_ID: z.string().min(1).default('sessionizer'),
  KAFKA_TOPICS: topics.default(['events']),
  KAFKA_SEGMENT_TOPICS: topics.optional(),
  KAFKA_TOPIC_SITES: topicSites.optional(),
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
  REDIS_CLUSTER_NODES: csv.pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port'))).optional(),
  REDIS_WAIT_REPLICAS: int(0).default(0),
  REDIS_WAIT_TIMEOUT_MS: int(1).default(1000),
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
  CLICKHOUSE_REPLICATED_PATH: z
    .string()
    .refine((p) => p.includes('{shard}'), 'must contain {shard}: each shard replicates its own data')
    .refine((p) => p.includes('{table}'), 'must contain {table}: each table needs its own replication log')
    .default('/clickhouse/tables/{shard}/{database}/{table}'),
  CLICKHOUSE_REPLICA_NAME: z
    .string()
    .refine((p) => p.includes('{replica}'), 'must contain {replica}: replicas of a shard need distinct names')
    .default('{replica}'),
  EVENTS_TTL_DAYS: int(0).default(400),

  SESSION_TIMEOUT_MINUTES: positive.default(30),
  ALLOWED_LATENESS_MINUTES: z.coerce.number().min(0).default(60),
  CLOSE_DELAY_SECONDS: z.coerce.number().min(0).default(2),
  MAX_CLOCK_SKEW_MINUTES: z.coerce.number().min(0).default(5),
  // Names may hold spaces ("Order Completed"); only the commas between them separate.
  KEY_EVENTS: csv.optional(),

  // No single default: each long-running command has its own (DEFAULT_HTTP_PORTS), so a worker
  // and a collector on one machine do not fight over one port.
  HTTP_PORT: int(0).max(65535).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_SECONDS: positive.default(30),
  CONNECT_TIMEOUT_SECONDS: positive.default(15),
  STALL_LIMIT_SECONDS: positive.default(300),
  CONSUMER_STALL_SECONDS: positive.default(10),
  STATE_LOG_MISMATCH: z.enum(['fail', 'reset']).default('fail'),

  // The `collect` HTTP server (docs/collect.md).
  COLLECT_WRITE_KEYS: z.string().optional(),
  COLLECT_PORT: int(0).max(65535).default(8080),
  COLLECT_HOST: z.string().min(1).default('0.0.0.0'),
  COLLECT_TOPIC: topicName.optional(),
  COLLECT_TRUSTED_PROXIES: z.string().default(''),
  COLLECT_MAX_MESSAGE_KB: positive.default(32),
  COLLECT_MAX_BATCH_KB: positive.default(500),
  COLLECT_QUEUE_MAX_EVENTS: int(1).default(50_000),
  COLLECT_PRODUCE_BATCH_EVENTS: int(1).default(2_000),
  COLLECT_ACK_TIMEOUT_SECONDS: positive.default(10),
  COLLECT_RETRY_AFTER_SECONDS: int(1).default(5),
  COLLECT_RATE_LIMIT_WINDOW_SECONDS: positive.default(60),
  COLLECT_RATE_LIMIT_PER_KEY: int(0).default(600_000),
  COLLECT_RATE_LIMIT_PER_IP: int(0).default(6_000),
  COLLECT_GEOIP_DATABASES: z.string().default('bundled'),
  COLLECT_COOKIELESS: bool.default(true),
  // Plausible's Events API: `domain:site,…`, the domains whose events are taken, and their sites.
  COLLECT_PLAUSIBLE_DOMAINS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      try {
        return parsePlausibleDomains(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),

  // The `dashboard` web server and Stats API (docs/dashboard.md).
  DASHBOARD_PORT: int(0).max(65535).default(8090),
  DASHBOARD_HOST: z.string().min(1).default('0.0.0.0'),
  DASHBOARD_CONFIG: z.string().min(1).optional(),
  DASHBOARD_SESSION_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (for example: openssl rand -base64 32)')
    .optional(),
  DASHBOARD_SESSION_HOURS: positive.default(168),
  DASHBOARD_LOGIN_ATTEMPTS_PER_MINUTE: int(1).default(10),
  DASHBOARD_TRUSTED_PROXIES: z.string().default(''),
});

export type RawConfig = z.output<typeof configSchema>;

/** Port of /healthz, /readyz and /metrics of each long-running command when HTTP_PORT is unset. */
export const DEFAULT_HTTP_PORTS = { worker: 9464, collect: 9465, dashboard: 9466 } as const;
export type ServerCommand = keyof typeof DEFAULT_HTTP_PORTS;

export interface Config {
  kafka: {
    brokers: string[];
    clientId: string;
    groupId: string;
    /** Every topic the worker consumes: KAFKA_TOPICS, then KAFKA_SEGMENT_TOPICS. */
    topics: string[];
    /** The ones among `topics` that carry Segment Spec messages. */
    segmentTopics: string[];
    /** Topic → the site of its events that name none (KAFKA_TOPIC_SITES); other topics: `default`. */
    topicSites: ReadonlyMap<string, string>;
    deadLetterTopic: string;
    createTopics: boolean;
    topicPartitions: number;
    ssl: boolean;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
    batchMaxBytes: number;
    maxWaitMs: number;
  };
  redis: {
    url: string;
    /** Redis Cluster seed nodes (`host:port`); when there are any, REDIS_URL is not used. */
    clusterNodes?: string[];
    username?: string;
    password?: string;
    tls: boolean;
    keyPrefix: string;
    stateTtlSeconds: number;
    userRecordTtlSeconds: number;
    /** Replicas that must acknowledge a state commit (`WAIT`) before its Kafka offsets are committed; 0 = none. */
    waitReplicas?: number;
    waitTimeoutMs?: number;
  };
  clickhouse: {
    url: string;
    username: string;
    password: string;
    database: string;
    /** "" for a single server; else the cluster of `remote_servers` that `migrate` shards and replicates over. */
    cluster: string;
    /** Keeper path of each replicated table, with `{shard}` (a server macro) and `{database}`/`{table}`. */
    replicatedPath?: string;
    /** Replica name of each replicated table: a server macro, `{replica}` by default. */
    replicaName?: string;
  };
  /** Days raw events are kept in ClickHouse (the events table's TTL); 0 keeps them forever. */
  eventsTtlDays: number;
  sessions: { timeoutMs: number; latenessMs: number; closeDelayMs: number; maxClockSkewMs: number };
  /** Names of Segment `track` events that are key events (conversions). */
  keyEvents: string[];
  /** Port of /healthz, /readyz and /metrics: HTTP_PORT, else the command's own default. */
  http: { port: number; collectPort: number; dashboardPort: number };
  logLevel: RawConfig['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  /** How long a command tries to reach a service before it gives up with a one-line reason. */
  connectTimeoutMs: number;
  /** A partition whose batch has failed and retried this long makes /healthz fail. */
  stallLimitMs: number;
  /** A partition with messages to read and no batch for this long makes the worker rebuild its Kafka consumer. */
  consumerStallMs: number;
  /** A partition whose Redis state belongs to another log: stop the worker, or drop that state. */
  onLogMismatch: RawConfig['STATE_LOG_MISMATCH'];
  collect: CollectConfig;
  dashboard: DashboardConfig;
}

/** The `dashboard` server's options; every one is documented in README.md and docs/dashboard.md. */
export interface DashboardConfig {
  port: number;
  host: string;
  /** The access file (sites, accounts, API keys, shared links); `dashboard` refuses to start without it. */
  configPath?: string;
  /** Signs login cookies; `dashboard` refuses to start without it. */
  sessionSecret?: string;
  /** HTTP_PORT when set, else 9466, so a dashboard beside a worker (9464) and a collector (9465) needs no setting. */
  httpPort: number;
  sessionTtlMs: number;
  loginAttemptsPerMinute: number;
  /** Proxies whose X-Forwarded-For/-Proto are believed (addresses or CIDRs); empty: none. */
  trustedProxies: string[];
}

/** The dashboard's health and metrics port when HTTP_PORT is not set. */
/** The dashboard's /healthz and /metrics port when HTTP_PORT is not set. */
export const DASHBOARD_DEFAULT_HTTP_PORT = 9466;

/** The `collect` server's options; every one is documented in README.md and docs/collect.md. */
export interface CollectConfig {
  /** Write key → site. A request whose key is not here gets 401. Several keys may name one site. */
  writeKeys: ReadonlyMap<string, string>;
  /**
   * Plausible Events API: domain (lower case, without `www.`) → site. Events for a domain not
   * here are dropped (202 with `x-plausible-dropped`, as Plausible answers for an unknown site).
   */
  plausibleDomains: ReadonlyMap<string, string>;
  port: number;
  host: string;
  /** Topic the collected events are produced to (default: the first of KAFKA_TOPICS). */
  topic: string;
  /** Proxies whose X-Forwarded-For is believed (addresses or CIDRs); empty: only the socket address. */
  trustedProxies: string[];
  maxMessageBytes: number;
  maxBatchBytes: number;
  /** Events waiting for Kafka's acknowledgement, at most; beyond that requests get 503. */
  queueMaxEvents: number;
  /** Events per produce request, at most. */
  produceBatchEvents: number;
  /** A request waits this long for Kafka's acknowledgement before it is answered 503. */
  ackTimeoutMs: number;
  retryAfterSeconds: number;
  rateLimit: { windowMs: number; perKey: number; perIp: number };
  /** mmdb files for geo lookups; empty: no geo enrichment. */
  geoipDatabases: string[] | 'bundled';
  cookieless: boolean;
}

const SECRET_NAMES = ['KAFKA_SASL_PASSWORD', 'REDIS_PASSWORD', 'CLICKHOUSE_PASSWORD', 'COLLECT_WRITE_KEYS', 'DASHBOARD_SESSION_SECRET'] as const;

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
  const writeKeys = parseWriteKeys(c.COLLECT_WRITE_KEYS ?? '');
  if (c.KAFKA_SASL_MECHANISM && (!c.KAFKA_SASL_USERNAME || !c.KAFKA_SASL_PASSWORD)) {
    throw new InvalidConfigError('invalid configuration: KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD');
  }
  const segmentTopics = [...new Set(c.KAFKA_SEGMENT_TOPICS ?? [])];
  const both = segmentTopics.filter((t) => c.KAFKA_TOPICS.includes(t));
  if (both.length > 0) {
    // A topic has one format; reading it both ways would reject every message one way.
    throw new InvalidConfigError(`invalid configuration: ${both.join(', ')} is in both KAFKA_TOPICS and KAFKA_SEGMENT_TOPICS`);
  }
  const topicSites = c.KAFKA_TOPIC_SITES ?? new Map<string, string>();
  const unknownTopics = [...topicSites.keys()].filter((t) => !c.KAFKA_TOPICS.includes(t) && !segmentTopics.includes(t));
  if (unknownTopics.length > 0) {
    // Most likely a typo: the events of the topic meant would silently go to the site `default`.
    throw new InvalidConfigError(`invalid configuration: KAFKA_TOPIC_SITES: ${unknownTopics.join(', ')} is in neither KAFKA_TOPICS nor KAFKA_SEGMENT_TOPICS`);
  }
  return {
    kafka: {
      brokers: c.KAFKA_BROKERS,
      clientId: c.KAFKA_CLIENT_ID,
      groupId: c.KAFKA_GROUP_ID,
      topics: [...c.KAFKA_TOPICS, ...segmentTopics],
      segmentTopics,
      topicSites,
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
      clusterNodes: c.REDIS_CLUSTER_NODES ?? [],
      username: c.REDIS_USERNAME,
      password: c.REDIS_PASSWORD,
      // A rediss:// URL means TLS by itself; REDIS_TLS turns it on for a redis:// URL.
      tls: c.REDIS_TLS || c.REDIS_URL.startsWith('rediss:'),
      keyPrefix: c.REDIS_KEY_PREFIX,
      stateTtlSeconds: Math.ceil(c.STATE_TTL_DAYS * 86_400),
      userRecordTtlSeconds: Math.ceil(c.USER_RECORD_TTL_DAYS * 86_400),
      waitReplicas: c.REDIS_WAIT_REPLICAS,
      waitTimeoutMs: c.REDIS_WAIT_TIMEOUT_MS,
    },
    clickhouse: {
      url: c.CLICKHOUSE_URL,
      username: c.CLICKHOUSE_USER,
      password: c.CLICKHOUSE_PASSWORD,
      database: c.CLICKHOUSE_DATABASE,
      cluster: c.CLICKHOUSE_CLUSTER,
      replicatedPath: c.CLICKHOUSE_REPLICATED_PATH,
      replicaName: c.CLICKHOUSE_REPLICA_NAME,
    },
    eventsTtlDays: c.EVENTS_TTL_DAYS,
    sessions: {
      timeoutMs: c.SESSION_TIMEOUT_MINUTES * 60_000,
      latenessMs: c.ALLOWED_LATENESS_MINUTES * 60_000,
      closeDelayMs: c.CLOSE_DELAY_SECONDS * 1000,
      maxClockSkewMs: c.MAX_CLOCK_SKEW_MINUTES * 60_000,
    },
    keyEvents: c.KEY_EVENTS ?? [],
    http: {
      port: c.HTTP_PORT ?? DEFAULT_HTTP_PORTS.worker,
      collectPort: c.HTTP_PORT ?? DEFAULT_HTTP_PORTS.collect,
      dashboardPort: c.HTTP_PORT ?? DEFAULT_HTTP_PORTS.dashboard,
    },
    logLevel: c.LOG_LEVEL,
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    connectTimeoutMs: c.CONNECT_TIMEOUT_SECONDS * 1000,
    stallLimitMs: c.STALL_LIMIT_SECONDS * 1000,
    consumerStallMs: c.CONSUMER_STALL_SECONDS * 1000,
    onLogMismatch: c.STATE_LOG_MISMATCH,
    collect: {
      writeKeys,
      port: c.COLLECT_PORT,
      host: c.COLLECT_HOST,
      topic: c.COLLECT_TOPIC ?? (c.KAFKA_TOPICS[0] as string),
      trustedProxies: splitList(c.COLLECT_TRUSTED_PROXIES),
      maxMessageBytes: Math.round(c.COLLECT_MAX_MESSAGE_KB * 1024),
      maxBatchBytes: Math.round(c.COLLECT_MAX_BATCH_KB * 1024),
      queueMaxEvents: c.COLLECT_QUEUE_MAX_EVENTS,
      produceBatchEvents: c.COLLECT_PRODUCE_BATCH_EVENTS,
      ackTimeoutMs: c.COLLECT_ACK_TIMEOUT_SECONDS * 1000,
      retryAfterSeconds: c.COLLECT_RETRY_AFTER_SECONDS,
      rateLimit: { windowMs: c.COLLECT_RATE_LIMIT_WINDOW_SECONDS * 1000, perKey: c.COLLECT_RATE_LIMIT_PER_KEY, perIp: c.COLLECT_RATE_LIMIT_PER_IP },
      geoipDatabases: c.COLLECT_GEOIP_DATABASES === 'bundled' ? 'bundled' : splitList(c.COLLECT_GEOIP_DATABASES === 'off' ? '' : c.COLLECT_GEOIP_DATABASES),
      cookieless: c.COLLECT_COOKIELESS,
      plausibleDomains: c.COLLECT_PLAUSIBLE_DOMAINS,
    },
    dashboard: {
      port: c.DASHBOARD_PORT,
      host: c.DASHBOARD_HOST,
      configPath: c.DASHBOARD_CONFIG,
      sessionSecret: c.DASHBOARD_SESSION_SECRET,
      httpPort: c.HTTP_PORT ?? DEFAULT_HTTP_PORTS.dashboard,
      sessionTtlMs: c.DASHBOARD_SESSION_HOURS * 3_600_000,
      loginAttemptsPerMinute: c.DASHBOARD_LOGIN_ATTEMPTS_PER_MINUTE,
      trustedProxies: splitList(c.DASHBOARD_TRUSTED_PROXIES),
    },
  };
}

function splitList(text: string): string[] {
  return text.split(',').map((part) => part.trim()).filter(Boolean);
}

/**
 * `key1:site1,key2:site2` → write key → site. Several keys may name one site (a shop's web
 * script and its tills: one site, so a visit that moves between them is one session); a key
 * without `:site` belongs to the site `default`. The site is stamped on every event the key
 * sends and goes into the cookieless hash, so two sites never share a visitor id.
 */
export function parseWriteKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of splitList(text)) {
    const at = entry.indexOf(':');
    const key = (at < 0 ? entry : entry.slice(0, at)).trim();
    const site = at < 0 ? DEFAULT_SITE : entry.slice(at + 1).trim();
    if (!key || !site) throw new InvalidConfigError('invalid configuration: COLLECT_WRITE_KEYS: an entry is not key:site');
    // The key is a secret: the messages name the site, never the key.
    if (!isValidSite(site)) throw new InvalidConfigError(`invalid configuration: COLLECT_WRITE_KEYS: "${site}" is not a site name (${SITE_RULE})`);
    if (keys.has(key)) throw new InvalidConfigError('invalid configuration: COLLECT_WRITE_KEYS: a write key is listed twice');
    keys.set(key, site);
  }
  return keys;
}

const SITE_RULE = '1-64 of a-z 0-9 . _ -, starting with a letter or digit';

/**
 * `example.com:shop,blog.example.com:blog` → Plausible domain → site. Domains are compared as
 * Plausible compares them: trimmed, without a leading `www.`, and (here) in lower case. Several
 * domains may name one site; one domain cannot name two.
 */
export function parsePlausibleDomains(text: string): Map<string, string> {
  const domains = new Map<string, string>();
  for (const entry of splitList(text)) {
    const at = entry.lastIndexOf(':');
    const domain = at < 0 ? '' : plausibleDomainKey(entry.slice(0, at));
    const site = at < 0 ? '' : entry.slice(at + 1).trim();
    if (!domain || !site) throw new Error(`"${entry}" is not domain:site`);
    if (!isValidSite(site)) throw new Error(`"${site}" is not a site name (${SITE_RULE})`);
    if (domains.has(domain)) throw new Error(`the domain ${domain} is listed twice`);
    domains.set(domain, site);
  }
  return domains;
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

/** HTTP_PORT alone, for the image's health check (src/healthcheck.ts); the command's default when unset or invalid. */
export function loadHttpPort(env: NodeJS.ProcessEnv = process.env, command: ServerCommand = 'worker'): number {
  const parsed = configSchema.shape.HTTP_PORT.safeParse(env.HTTP_PORT === '' ? undefined : env.HTTP_PORT);
  return parsed.success && parsed.data !== undefined ? parsed.data : DEFAULT_HTTP_PORTS[command];
}
