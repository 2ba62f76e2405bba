/**
 * `recompute --since D --sink clickhouse --shard I/N`: N processes share a recalculation, each
 * taking the user keys with `cityHash64(user_key) % N = I`. The hash is computed by ClickHouse in
 * the queries that list the keys, so every process agrees on it without any coordination, and
 * the shards are disjoint and cover every key: run I = 0 … N-1 (a Kubernetes Indexed Job's
 * completion index) and together they do exactly what one process does.
 *
 * It is the hash the Distributed tables shard by (src/clickhouse/cluster-schema.ts), so with N
 * equal to the number of equally weighted ClickHouse shards, process I handles the keys stored
 * on shard I + 1.
 */
import { InvalidArgumentError } from 'commander';
import { SHARDING_KEY } from '../clickhouse/cluster-schema';

export interface KeyShard {
  /** I, from 0 to count - 1. */
  index: number;
  /** N, at least 1. */
  count: number;
}

/** Commander parser for `--shard I/N` (0 ≤ I < N). */
export function parseKeyShard(value: string): KeyShard {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new InvalidArgumentError('expected I/N with 0 <= I < N, e.g. 0/3 (I is a Kubernetes Indexed Job completion index)');
  }
  return { index, count };
}

/** The WHERE condition of a shard (with `shardParams`), or "" for none. Reads `user_key`. */
export function shardCondition(shard: KeyShard | undefined): string {
  if (!shard || shard.count === 1) return '';
  return `AND ${SHARDING_KEY} % {shard_count:UInt64} = {shard_index:UInt64}`;
}

export function shardParams(shard: KeyShard | undefined): Record<string, number> {
  if (!shard || shard.count === 1) return {};
  return { shard_count: shard.count, shard_index: shard.index };
}
