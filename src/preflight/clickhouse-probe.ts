/**
 * Is ClickHouse there, and does it take our credentials? `SELECT 1` (the `/ping` endpoint needs
 * no credentials, so it would not catch a wrong password), retried until the connect deadline.
 */
import type { Logger } from 'pino';
import { createClickHouseClient } from '../clickhouse/client';
import type { Config } from '../config';
import { ServiceUnavailableError } from '../errors';
import { retryUntil, shortReason } from './deadline';

function isAuthError(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /AUTHENTICATION_FAILED|Authentication failed|password is incorrect|REQUIRED_PASSWORD/i.test(text);
}

/** The URL without user info. */
export function clickhouseAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '(unparsable CLICKHOUSE_URL)';
  }
}

export async function probeClickHouse(config: Config['clickhouse'], options: { timeoutMs: number; log: Logger }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  try {
    await retryUntil(
      async (left) => {
        const client = createClickHouseClient(config, { application: 'sessionizer-probe', requestTimeoutMs: Math.min(5_000, left) });
        try {
          // Error answers read here: the client would turn one with an empty body (a proxy's bare
          // 502) into an Error with an empty message.
          const { stream, http_status_code: status = 200 } = await client.exec({ query: 'SELECT 1', ignore_error_response: true });
          let text = '';
          for await (const chunk of stream) text += (chunk as Buffer).toString('utf8');
          if (status < 200 || status >= 300) {
            throw new Error(text.trim() !== '' ? text.trim() : `HTTP ${status} with no message (a proxy or load balancer in between?)`);
          }
        } finally {
          await client.close().catch(() => undefined);
        }
      },
      { deadline, isFatal: isAuthError },
    );
  } catch (err) {
    options.log.debug({ err, service: 'clickhouse', address: clickhouseAddress(config.url) }, 'clickhouse unreachable');
    const auth = isAuthError(err);
    throw new ServiceUnavailableError(
      'ClickHouse',
      clickhouseAddress(config.url),
      auth ? 'authentication failed' : shortReason(err),
      auth ? 'Check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD' : 'Check CLICKHOUSE_URL (its HTTP port, 8123 by default) and that ClickHouse listens there',
      err,
    );
  }
}
