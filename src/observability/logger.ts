/**
 * Structured JSON logs (pino). Secrets are redacted by path wherever they could appear, so a
 * logged config or error never carries a password.
 */
import pino, { type Logger } from 'pino';

export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'sasl.password',
  'kafka.sasl.password',
  'redis.password',
  'clickhouse.password',
  'config.kafka.sasl.password',
  'config.redis.password',
  'config.clickhouse.password',
  'url',
  '*.url',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sessionizer' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
