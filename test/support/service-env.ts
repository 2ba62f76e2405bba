/**
 * The environment variables that say where the services are. Global setup fills in whatever is
 * missing; test workers inherit them (Jest starts its workers after global setup).
 */
import type { ServiceName } from '../../deploy/local/service';

export const SERVICE_ENV: Record<ServiceName, { required: string; optional: string[] }> = {
  kafka: { required: 'KAFKA_BROKERS', optional: [] },
  redis: { required: 'REDIS_URL', optional: [] },
  clickhouse: { required: 'CLICKHOUSE_URL', optional: ['CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD'] },
};

/** Reads a variable that global setup guarantees, with a hint when a test runs without it. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(
      `${name} is not set. Integration tests get it from test/support/global-setup.ts: run them with ` +
        '`npx jest --selectProjects integration` (or `npm test`), or export it yourself (docs/services.md).',
    );
  }
  return value;
}

/** True when the environment already points at this service. */
export function configuredByEnv(name: ServiceName): boolean {
  return (process.env[SERVICE_ENV[name].required] ?? '') !== '';
}
