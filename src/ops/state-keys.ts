/**
 * Finding the worker's Redis keys of whole topics (for `reset`): every key of a partition
 * starts with its hash tag `{prefix:topic:N}` (see src/state/keys.ts), so one SCAN per topic
 * finds them, and the part after the tag says what each is.
 */
import type Redis from 'ioredis';
import { globEscape } from '../state/keys';
import { scanKeys } from '../state/redis-client';

export interface PartitionKeySet {
  topic: string;
  partition: number;
  keys: string[];
  /**
   * Users with stored state: state keys (`…:u:<user key>`), plus, after `scanPartitionKeys`, the
   * records in the idle buckets.
   */
  users: number;
  /** The partition's idle-record buckets (`…:i:<n>`, hashes of user key → record). */
  idleKeys: string[];
  /** Keys of the outbox hash (session rows committed but perhaps not yet in ClickHouse). */
  outboxKey: string | null;
}

/** Groups `keys` of `topic` by partition; keys of other topics that share the glob are left out. */
export function groupPartitionKeys(prefix: string, topic: string, keys: readonly string[]): PartitionKeySet[] {
  const head = `{${prefix}:${topic}:`;
  const byPartition = new Map<number, PartitionKeySet>();
  for (const key of keys) {
    if (!key.startsWith(head)) continue;
    const close = key.indexOf('}:', head.length);
    const middle = close < 0 ? '' : key.slice(head.length, close);
    if (!/^\d+$/.test(middle)) continue;
    const partition = Number(middle);
    let set = byPartition.get(partition);
    if (!set) byPartition.set(partition, (set = { topic, partition, keys: [], users: 0, idleKeys: [], outboxKey: null }));
    set.keys.push(key);
    const rest = key.slice(close + 2);
    if (rest.startsWith('u:')) set.users += 1;
    else if (rest.startsWith('i:')) set.idleKeys.push(key);
    else if (rest === 'outbox') set.outboxKey = key;
  }
  return [...byPartition.values()].sort((a, b) => a.partition - b.partition);
}

/**
 * Every worker key of `topic` under `prefix`, by partition (SCAN: never blocks a shared Redis;
 * on a Redis Cluster, every master is scanned). This covers every per-partition key the worker
 * has or will have — state, queues, outbox, repair log — as long as it starts with the tag.
 */
export async function scanPartitionKeys(redis: Redis, prefix: string, topic: string): Promise<PartitionKeySet[]> {
  const found = await scanKeys(redis, `${globEscape(`{${prefix}:${topic}:`)}*`);
  const sets = groupPartitionKeys(prefix, topic, [...new Set(found)]);
  // Idle records are fields of the buckets: count them (one command per bucket, each in its partition's slot).
  for (const set of sets) for (const count of await Promise.all(set.idleKeys.map((key) => redis.hlen(key)))) set.users += count;
  return sets;
}

/**
 * Deletes keys in batches with UNLINK (freed in the background); returns how many existed. On a
 * Redis Cluster a multi-key UNLINK must stay in one slot: give it one partition's keys at a time.
 */
export async function unlinkKeys(redis: Redis, keys: readonly string[], batch = 500): Promise<number> {
  let removed = 0;
  for (let i = 0; i < keys.length; i += batch) removed += await redis.unlink(...keys.slice(i, i + batch));
  return removed;
}
