/**
 * Is Redis there, and does it take our credentials? One connection without retries or offline
 * queue per attempt, a PING, closed again; retried until the connect deadline.
 */
import { Cluster, Redis } from 'ioredis';
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

/** Where the probe looks: REDIS_URL's address, or the Redis Cluster seed nodes when there are any. */
export function redisTarget(config: Config['redis']): string {
  const nodes = config.clusterNodes ?? [];
  return nodes.length > 0 ? nodes.join(',') : redisAddress(config.url);
}

function probeClient(config: Config['redis'], connectTimeout: number): Redis | Cluster {
  const options = {
    username: config.username,
    password: config.password,
    tls: config.tls ? {} : undefined,
    lazyConnect: true,
    connectTimeout,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  };
  const nodes = config.clusterNodes ?? [];
  if (nodes.length === 0) return new Redis(config.url, options);
  // A cluster answers once its slot map is read from a seed node: that is what the probe waits for.
  return new Cluster(
    nodes.map((address) => ({ host: address.slice(0, address.lastIndexOf(':')), port: Number(address.slice(address.lastIndexOf(':') + 1)) })),
    { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null, slotsRefreshTimeout: connectTimeout, redisOptions: options },
  );
}

export async function probeRedis(config: Config['redis'], options: { timeoutMs: number; log: Logger }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  try {
    await retryUntil(
      async (left) => {
        const redis = probeClient(config, Math.min(5_000, left));
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
    options.log.debug({ err, service: 'redis', address: redisTarget(config) }, 'redis unreachable');
    const auth = isAuthError(err);
    throw new ServiceUnavailableError(
      'Redis',
      redisTarget(config),
      auth ? 'authentication failed' : shortReason(err).replace(/\.+$/, ''),
      auth ? 'Check REDIS_USERNAME and REDIS_PASSWORD' : config.clusterNodes?.length ? 'Check REDIS_CLUSTER_NODES (and REDIS_TLS) and that the cluster is up' : 'Check REDIS_URL (and REDIS_TLS) and that Redis listens there',
      err,
    );
  }
}
