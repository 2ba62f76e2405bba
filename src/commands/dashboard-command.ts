/**
 * `sessionizer dashboard`: the web pages and the Stats API over ClickHouse (docs/dashboard.md).
 * Reads the access file (DASHBOARD_CONFIG), serves on DASHBOARD_HOST:DASHBOARD_PORT and
 * /healthz, /readyz, /metrics on HTTP_PORT (9466 unless set), and stops on SIGTERM/SIGINT.
 * It keeps no state: run as many replicas as you like behind a balancer, with the same
 * DASHBOARD_SESSION_SECRET and access file.
 *
 * `sessionizer dashboard hash-secret` reads a secret on stdin and prints its hash for the
 * access file; with --generate it makes a random secret (an API key or a shared-link token)
 * and prints both.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouseClient } from '../clickhouse/client';
import type { Config } from '../config';
import { loadDashboardAccess } from '../dashboard/config';
import { DashboardMetrics } from '../dashboard/metrics';
import { hashSecret } from '../dashboard/secret-hash';
import { buildDashboardApp } from '../dashboard/server';
import { InvalidConfigError, UsageError } from '../errors';
import { boundPort, startHttpServer, type HealthReport, type HealthSource } from '../observability/http-server';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';

export async function runDashboard(config: Config): Promise<number> {
  const options = config.dashboard;
  if (!options.configPath) throw new InvalidConfigError('invalid configuration: dashboard needs DASHBOARD_CONFIG (the access file, docs/dashboard.md)');
  if (!options.sessionSecret) {
    throw new InvalidConfigError('invalid configuration: dashboard needs DASHBOARD_SESSION_SECRET or DASHBOARD_SESSION_SECRET_FILE (32+ characters, the same on every replica)');
  }
  const access = loadDashboardAccess(options.configPath);
  const log = createLogger(config.logLevel, undefined, { secrets: [...secretsOf(config), options.sessionSecret] }).child({ command: 'dashboard' });
  await preflight(config, { clickhouse: true }, log);
  const clickhouse = createClickHouseClient(config.clickhouse, { application: 'sessionizer-dashboard', requestTimeoutMs: 30_000 });
  const metrics = new DashboardMetrics({ defaultMetrics: true });
  const app = await buildDashboardApp({
    clickhouse,
    database: config.clickhouse.database,
    access,
    sessionSecret: options.sessionSecret,
    log,
    metrics,
    sessionTtlMs: options.sessionTtlMs,
    loginRateLimit: { max: options.loginAttemptsPerMinute, windowMs: 60_000 },
    trustProxy: options.trustedProxies.length > 0 ? options.trustedProxies : false,
  });
  await app.listen({ port: options.port, host: options.host });
  const health = await startHttpServer(options.httpPort, clickHouseHealth(clickhouse), metrics.registry);
  log.info({ port: options.port, host: options.host, httpPort: boundPort(health), sites: access.sites.length }, 'dashboard listening');
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'shutting down');
  await app.close();
  health.close();
  await clickhouse.close();
  return 0;
}

/** Alive while the process runs; ready while ClickHouse answers. */
function clickHouseHealth(clickhouse: ClickHouseClient): HealthSource {
  return {
    health: (): HealthReport => ({ status: 'ok', checks: { loop: true } }),
    readiness: async (): Promise<HealthReport> => {
      const ping = await clickhouse.ping().catch(() => ({ success: false }));
      return { status: ping.success ? 'ok' : 'error', checks: { clickhouse: ping.success } };
    },
  };
}

export interface HashSecretOptions {
  /** Make a random secret instead of reading one. */
  generate?: boolean;
}

/**
 * Prints the hash of the secret on `input` (one trailing newline is not part of it), or with
 * `generate` a new random secret and its hash, one per line. Returns what it printed.
 */
export async function runHashSecret(options: HashSecretOptions, input: NodeJS.ReadableStream = process.stdin, write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<string> {
  let secret: string;
  if (options.generate) {
    secret = randomBytes(24).toString('base64url');
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (secret === '') throw new UsageError('dashboard hash-secret: no secret on stdin (printf %s SECRET | sessionizer dashboard hash-secret)');
  }
  const hash = await hashSecret(secret);
  const text = options.generate ? `${secret}\n${hash}\n` : `${hash}\n`;
  write(text);
  return text;
}
