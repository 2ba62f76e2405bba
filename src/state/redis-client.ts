/**
 * The one place a Redis client is made from configuration: a single server (REDIS_URL), or a
 * Redis Cluster (REDIS_CLUSTER_NODES) through ioredis' cluster client.
 *
 * The rest of the code is the same for both. Every key a script or a multi-key command touches
 * carries its partition's hash tag (keys.ts), so each lands on one slot and one node; the
 * cluster client routes by that slot, follows MOVED (a slot moved for good, e.g. after a
 * reshard or failover: it refreshes its slot map) and ASK (a slot being migrated: one command
 * goes to the target node), and retries TRYAGAIN (a multi-key command whose keys are split
 * between the two nodes mid-migration) and CLUSTERDOWN (no master for a slot, during a failover).
 *
 * What differs is only what spans nodes: SCAN must walk every master (`scanKeys`), and a
 * pipeline goes to one node, so commands for keys of different partitions are sent as separate
 * commands (ioredis writes them back to back either way).
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Config } from '../config';

export interface RedisClientOptions {
  /**
   * Attempts of a command while the connection is down: `null` queues commands until Redis is
   * back (the worker's own retry loop decides when to give up); a number fails them after that.
   */
  maxRetriesPerRequest: number | null;
}

/**
 * A client for `config`. A cluster client is returned under the `Redis` type: it offers the same
 * commands (and `defineCommand` for our scripts), which is all the callers use; code that must
 * know (SCAN) asks `isCluster`.
 */
export function createRedisClient(config: Config['redis'], options: RedisClientOptions): Redis {
  const common: RedisOptions = {
    username: config.username,
    password: config.password,
    tls: config.tls ? {} : undefined,
    maxRetriesPerRequest: options.maxRetriesPerRequest,
  };
  const nodes = config.clusterNodes ?? [];
  if (nodes.length === 0) return new Redis(config.url, { ...common, lazyConnect: false });
  const cluster = new Cluster(nodes.map(parseNode), {
    redisOptions: common,
    // Reads go to masters too: a replica may lag behind the state a commit just wrote.
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
  });
  return cluster as unknown as Redis;
}

/** Whether a client from `createRedisClient` is a cluster client (ioredis marks both kinds). */
export function isCluster(redis: Redis | Cluster): boolean {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/** Every key matching `pattern`: on a cluster, from every master. */
export async function scanKeys(redis: Redis, pattern: string, count = 10_000): Promise<string[]> {
  const servers: Redis[] = isCluster(redis) ? (redis as unknown as Cluster).nodes('master') : [redis];
  const keys: string[] = [];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys;
}

function parseNode(address: string): ClusterNode {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}
