/**
 * Is Redis there, and does it take our credentials? One connection without retries or offline
 * queue per attempt, a PING, closed again; retried until the connect deadline.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { ServiceUnavailableError } from '../errors';
import { retryUntil, shortReason } from './deadline';

function isAuthError(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(text);
}

/** `host:port` of a Redis URL, without credentials. */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return '(unparsable REDIS_URL)';
  }
}

export async function probeRedis(config: Config['redis'], options: { timeoutMs: number; log: Logger }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  try {
    await retryUntil(
      async (left) => {
        const redis = new Redis(config.url, {
          username: config.username,
          password: config.password,
          tls: config.tls ? {} : undefined,
          lazyConnect: true,
          connectTimeout: Math.min(5_000, left),
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        });
        // ioredis rejects a failed connect with "Connection is closed"; the socket's own error
        // (ECONNREFUSED, ENOTFOUND, WRONGPASS...) arrives as an event: report that one.
        let socketError: unknown = null;
        redis.on('error', (err) => (socketError ??= err));
        try {
          await redis.connect();
          await redis.ping();
        } catch (err) {
          throw socketError ?? err;
        } finally {
          redis.disconnect();
        }
      },
      { deadline, isFatal: isAuthError },
    );
  } catch (err) {
    options.log.debug({ err, service: 'redis', address: redisAddress(config.url) }, 'redis unreachable');
    const auth = isAuthError(err);
    throw new ServiceUnavailableError(
      'Redis',
      redisAddress(config.url),
      auth ? 'authentication failed' : shortReason(err),
      auth ? 'Check REDIS_USERNAME and REDIS_PASSWORD' : 'Check REDIS_URL (and REDIS_TLS) and that Redis listens there',
      err,
    );
  }
}
