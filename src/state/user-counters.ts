/**
 * The Redis side of recalculation (docs/recalculation.md): finds where the streaming worker
 * keeps a user's state, and rewrites the state's session counters (sessions already forgotten,
 * and the last one's id) so that the worker numbers the sessions it still holds, and every later
 * one, after what recalculation found.
 *
 * A user's value is a state under its own key, or, once its sessions were all forgotten, an idle
 * record in the partition's idle buckets (partition-state-store.ts). The worker loads a state,
 * runs the engine and commits the result with `commitBatch`, which checks only the partition's
 * epoch. A plain write of a value between its load and its commit would be overwritten, so
 * `adjustUserCounters.lua` writes each value only if it is still the bytes we read, and then
 * bumps the partition's epoch: the worker's next commit is fenced, it re-claims the partition
 * and reloads. Users whose sessions must be renumbered are put in the close zset with score 0,
 * so the worker reconciles them at its next batch or tick.
 *
 * Partitions are found by their meta hash (`{prefix:topic:N}:meta`, see keys.ts), which the
 * worker creates when it first claims a partition: one SCAN per topic at start-up, which walks
 * the whole key space once (every master of a Redis Cluster), and needs no connection to Kafka.
 * Reads of several partitions are one command per partition, not a pipeline: on a cluster the
 * partitions' slots may be on different nodes.
 *
 * While a Redis Cluster reshard moves a partition's slot, the scripts that reach its idle buckets
 * (readIdle, adjustUserCounters, forgetUsers) fail with nothing written until the slot is whole
 * on one node again (scripts/_idle.lua, idleTouch); those failures, and the cluster's own
 * TRYAGAIN, are retried here for up to `retryForMs`.
 */
import type Redis from 'ioredis';
import { isIdle, newKeyState, type KeyState } from '../engine/engine';
import { StateCorruptError } from '../errors';
import { decodeIdleRecord, encodeIdleRecord, encodeState, expiryMinute } from './codec';
import { PartitionKeys, globEscape, outboxToken } from './keys';
import { readStoredValues, storedState, type StoredValue } from './partition-state-store';
import { scanKeys } from './redis-client';
import { withRetry } from '../worker/retry';

export interface StatePartition {
  topic: string;
  partition: number;
  keys: PartitionKeys;
}

/** A user's state as found in one partition. */
export interface FoundState {
  partition: StatePartition;
  /** The stored value exactly as read: the expected value of the compare-and-set. */
  stored: StoredValue;
  state: KeyState;
}

/** A pending outbox entry of a partition: session rows the worker committed, maybe not yet in ClickHouse. */
export interface PendingOutboxEntry {
  partition: StatePartition;
  seq: number;
  payload: Buffer;
  /** The deduplication token the worker inserts this entry with. */
  token: string;
}

export interface CounterUpdate {
  userKey: string;
  /** The value read (null: there was none, or an expired idle record), which must still be there. */
  expected: StoredValue | null;
  count: number;
  lastId: string;
  /** Whether the worker must reconcile the user promptly (it holds sessions to renumber). */
  due: boolean;
}

interface CounterCommands {
  adjustUserCounters(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer>): Promise<number[]>;
  forgetUsers(numberOfKeys: number, ...keysAndArgs: string[]): Promise<number>;
}

/** How long a read or write of one partition is retried while it fails transiently (a reshard, a failover). */
export const DEFAULT_RETRY_FOR_MS = 120_000;

/**
 * The value to store with new counters, in the place it was read from: the state as it is
 * (sessions, seen ids, and the numbering its rows were written with) with its counters replaced,
 * or an idle record (keeping its expiry; a new one expires `idleTtlSeconds` after `nowMs`).
 */
export function withCounters(userKey: string, stored: StoredValue | null, count: number, lastId: string, nowMs: number, idleTtlSeconds: number): Buffer {
  if (stored?.where === 'key') {
    const state = storedState(userKey, stored, nowMs) ?? newKeyState(userKey);
    state.forgottenCount = count;
    state.forgottenLastId = lastId;
    return encodeState(state);
  }
  const expiresAtMinute = stored ? decodeIdleRecord(stored.bytes).expiresAtMinute : expiryMinute(nowMs, idleTtlSeconds);
  return encodeIdleRecord({ count, lastId, expiresAtMinute });
}

export class UserCounterStore {
  private partitionList: StatePartition[] | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly topics: readonly string[],
    /** TTL of an idle record we create, as the worker's USER_RECORD_TTL_DAYS. */
    private readonly idleTtlSeconds: number,
    /** Wall-clock time: when idle records expire. */
    private readonly now: () => number = Date.now,
    /** How long a transient failure (a reshard moving a partition's slot, a failover) is retried. */
    private readonly retryForMs: number = DEFAULT_RETRY_FOR_MS,
  ) {}

  /**
   * `work` again while it fails transiently (`isTransient`: TRYAGAIN, a script refused because a
   * key of it is not on the node, a lost connection), for up to `retryForMs`. Only for work that
   * a failure leaves undone, or that can be done twice (the scripts here: compare and set, delete).
   */
  private retry<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const until = Date.now() + this.retryForMs;
    return withRetry(operation, work, { shouldContinue: () => Date.now() < until });
  }

  /** Partitions of the configured topics that hold worker state, ordered by topic and number. */
  async partitions(): Promise<StatePartition[]> {
    if (this.partitionList) return this.partitionList;
    const found: StatePartition[] = [];
    for (const topic of this.topics) {
      const head = `{${this.prefix}:${topic}:`;
      const pattern = `${globEscape(head)}*}:meta`;
      const numbers = new Set<number>();
      for (const key of await scanKeys(this.redis, pattern)) {
        const middle = key.slice(head.length, key.length - '}:meta'.length);
        if (/^\d+$/.test(middle)) numbers.add(Number(middle));
      }
      for (const partition of [...numbers].sort((a, b) => a - b)) {
        found.push({ topic, partition, keys: new PartitionKeys(this.prefix, topic, partition) });
      }
    }
    this.partitionList = found;
    return found;
  }

  /** Each user's states, in every partition that has one (normally one; none for a key never streamed). */
  async locate(userKeys: readonly string[]): Promise<Map<string, FoundState[]>> {
    const located = new Map<string, FoundState[]>();
    const partitions = await this.partitions();
    if (userKeys.length === 0 || partitions.length === 0) return located;
    // One read per partition: its keys share a slot, other partitions' may be on other nodes.
    const replies = await Promise.all(partitions.map((p) => this.retry('read stored values', () => readStoredValues(this.redis, p.keys, userKeys))));
    const now = this.now();
    partitions.forEach((partition, i) => {
      const values = replies[i] ?? [];
      values.forEach((stored, j) => {
        if (stored == null) return;
        const userKey = userKeys[j] as string;
        let state: KeyState | null;
        try {
          state = storedState(userKey, stored, now);
        } catch (cause) {
          throw new StateCorruptError(stored.where === 'key' ? partition.keys.user(userKey) : `${partition.keys.idle}… field ${userKey}`, cause);
        }
        if (!state) return; // an expired idle record: as good as none
        const list = located.get(userKey);
        const entry = { partition, stored, state };
        if (list) list.push(entry);
        else located.set(userKey, [entry]);
      });
    });
    return located;
  }

  /** Each partition's event-time watermark (null before its first commit), by `topic:partition`. */
  async watermarks(): Promise<Map<string, number | null>> {
    const partitions = await this.partitions();
    const result = new Map<string, number | null>();
    if (partitions.length === 0) return result;
    const replies = await Promise.all(partitions.map((p) => this.redis.hget(p.keys.meta, 'watermark')));
    partitions.forEach((p, i) => {
      const value = replies[i];
      result.set(partitionId(p.topic, p.partition), value == null || value === '' ? null : Number(value));
    });
    return result;
  }

  /** Outbox entries the worker committed but has not confirmed in ClickHouse yet, of every partition. */
  async pendingOutbox(): Promise<PendingOutboxEntry[]> {
    const partitions = await this.partitions();
    if (partitions.length === 0) return [];
    // One command per partition (not a pipeline): on Redis Cluster each goes to its own slot.
    const replies = await Promise.all(partitions.map(async (p) => [await this.redis.hgetallBuffer(p.keys.outbox), await this.redis.hget(p.keys.meta, 'gen')] as const));
    const entries: PendingOutboxEntry[] = [];
    partitions.forEach((partition, i) => {
      const [hash, generation] = replies[i] ?? [{}, null];
      for (const [seq, payload] of Object.entries((hash ?? {}) as Record<string, Buffer>)) {
        const token = outboxToken(partition.topic, partition.partition, String(generation ?? ''), Number(seq), payload);
        entries.push({ partition, seq: Number(seq), payload, token });
      }
    });
    return entries.sort((a, b) => a.partition.topic.localeCompare(b.partition.topic) || a.partition.partition - b.partition.partition || a.seq - b.seq);
  }

  /**
   * Writes the counters of users of one partition, each only if its value is still the one read
   * (`expected`), and fences the partition's owner when any was written. Returns the user keys
   * whose value had changed meanwhile (read them again and retry).
   */
  async adjust(partition: StatePartition, updates: readonly CounterUpdate[]): Promise<string[]> {
    if (updates.length === 0) return [];
    const keys = [partition.keys.meta, partition.keys.closeDeadlines];
    const now = this.now();
    const args: Array<string | Buffer> = [partition.keys.idle, String(Math.floor(now / 60_000))];
    for (const u of updates) {
      keys.push(partition.keys.user(u.userKey));
      const value = withCounters(u.userKey, u.expected, u.count, u.lastId, now, this.idleTtlSeconds);
      const where = u.expected === null ? '' : u.expected.where === 'key' ? 'k' : 'i';
      args.push(u.userKey, where, u.expected?.bytes ?? '', value, u.due ? '1' : '0');
    }
    // A retry after a reply was lost finds its own values in place of `expected`: those users come
    // back as changed, and the caller reads them again (and finds nothing left to do).
    const results = await this.retry('adjust user counters', () => (this.redis as unknown as CounterCommands).adjustUserCounters(keys.length, ...keys, ...args));
    return updates.filter((_, i) => Number(results[i]) !== 1).map((u) => u.userKey);
  }

  /**
   * Erases users' state in one partition (scripts/forgetUsers.lua): state keys, idle records,
   * deadlines, repair notes; fences the partition's owner when anything was deleted. Returns the
   * state keys and idle records deleted.
   */
  async forget(partition: StatePartition, userKeys: readonly string[]): Promise<number> {
    if (userKeys.length === 0) return 0;
    const { meta, closeDeadlines, forgetDeadlines, repair, repairBase, repairWrites } = partition.keys;
    const keys = [meta, closeDeadlines, forgetDeadlines, repair, repairBase, repairWrites, ...userKeys.map((u) => partition.keys.user(u))];
    return this.retry('forget users', () => (this.redis as unknown as CounterCommands).forgetUsers(keys.length, ...keys, partition.keys.idle, ...userKeys));
  }
}

/** `topic:partition`, the key of `watermarks()`. */
export function partitionId(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/** Whether the state holds sessions the worker may still change (and renumber). */
export function holdsSessions(state: KeyState): boolean {
  return !isIdle(state);
}
