/**
 * The Redis adapter for one partition's session state. Reads are plain commands; every change
 * goes through a Lua script (scripts/), so a batch's state, deadlines, offset and outbox land
 * atomically and only while we hold the partition's epoch.
 */
import type Redis from 'ioredis';
import { isIdle, type KeyState } from '../engine/engine';
import { CommitAlreadyAppliedError, PartitionFencedError, ReplicaAckError, StateCorruptError } from '../errors';
import { decodeState, encodeState } from './codec';
import { PartitionKeys } from './keys';
import type { StateCommands } from './script-loader';

/** Negative results of the scripts, mapped to typed errors in `commit` and `ack`. */
export enum ScriptResult {
  Fenced = -1,
  RevMoved = -2,
}

export interface PartitionClaim {
  epoch: string;
  /** Commits applied so far; the next commit must start from it. */
  rev: number;
  /** Last applied offset, "-1" when none. */
  offset: string;
  /** Event-time watermark, null before the first batch. */
  watermark: number | null;
}

export interface UserUpdate {
  state: KeyState;
  closeAt: number | null;
  forgetAt: number | null;
}

export interface StateTtl {
  /** For a key with sessions that may still change. */
  activeSeconds: number;
  /** For the compact record of a key whose sessions were all forgotten. */
  idleSeconds: number;
}

/** REDIS_WAIT_REPLICAS / REDIS_WAIT_TIMEOUT_MS: replica acknowledgement of state commits. */
export interface ReplicaAck {
  /** Replicas that must have a commit before its Kafka offsets are committed; 0 = do not wait. */
  replicas: number;
  timeoutMs: number;
}

export class PartitionStateStore {
  readonly keys: PartitionKeys;

  constructor(
    private readonly redis: Redis & StateCommands,
    prefix: string,
    readonly topic: string,
    readonly partition: number,
    private readonly ttl: StateTtl,
    private readonly replicaAck: ReplicaAck = { replicas: 0, timeoutMs: 0 },
  ) {
    this.keys = new PartitionKeys(prefix, topic, partition);
  }

  async claim(): Promise<PartitionClaim> {
    const [epoch, rev, offset, watermark] = await this.redis.claimPartition(this.keys.meta);
    return { epoch: String(epoch), rev: Number(rev), offset, watermark: watermark === '' ? null : Number(watermark) };
  }

  async loadStates(userKeys: readonly string[]): Promise<Map<string, KeyState>> {
    const states = new Map<string, KeyState>();
    if (userKeys.length === 0) return states;
    const values = await this.redis.mget(userKeys.map((k) => this.keys.user(k)));
    userKeys.forEach((userKey, i) => {
      const text = values[i];
      if (text == null) return;
      try {
        states.set(userKey, decodeState(userKey, text));
      } catch (err) {
        throw new StateCorruptError(this.keys.user(userKey), err);
      }
    });
    return states;
  }

  /** Users with a session to close by `closeBound` or to forget by `forgetBound`, at most `limit` of each. */
  async dueUsers(closeBound: number, forgetBound: number, limit: number): Promise<string[]> {
    const due = new Set<string>();
    if (Number.isFinite(closeBound)) {
      for (const u of await this.redis.zrangebyscore(this.keys.closeDeadlines, '-inf', closeBound, 'LIMIT', 0, limit)) due.add(u);
    }
    if (Number.isFinite(forgetBound)) {
      for (const u of await this.redis.zrangebyscore(this.keys.forgetDeadlines, '-inf', forgetBound, 'LIMIT', 0, limit)) due.add(u);
    }
    return [...due];
  }

  /**
   * Commits a batch: user states and deadlines, the applied offset and watermark, and the outbox
   * payload. Returns the outbox sequence number (0 when there was no payload).
   * Throws `PartitionFencedError` when another worker claimed the partition, and
   * `CommitAlreadyAppliedError` when `rev` moved on under our own epoch: an earlier attempt of
   * this same commit landed although its reply was lost.
   */
  async commit(params: {
    epoch: string;
    rev: number;
    offset: string;
    watermark: number;
    payload: string;
    updates: readonly UserUpdate[];
  }): Promise<number> {
    const keys = [this.keys.meta, this.keys.closeDeadlines, this.keys.forgetDeadlines, this.keys.outbox];
    const args = [params.epoch, String(params.rev), params.offset, String(params.watermark), params.payload];
    for (const update of params.updates) {
      const idle = isIdle(update.state);
      keys.push(this.keys.user(update.state.userKey));
      args.push(
        update.state.userKey,
        encodeState(update.state),
        String(idle ? this.ttl.idleSeconds : this.ttl.activeSeconds),
        update.closeAt === null ? '' : String(update.closeAt),
        update.forgetAt === null ? '' : String(update.forgetAt),
      );
    }
    const result = await this.redis.commitBatch(keys.length, ...keys, ...args);
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, params.epoch);
    if (result === ScriptResult.RevMoved) throw new CommitAlreadyAppliedError(this.topic, this.partition, params.rev);
    return result;
  }

  /**
   * Waits until the configured number of replicas of the Redis node holding this partition have
   * every write made so far (`WAIT`): call it after `commit` and before committing the batch's
   * Kafka offsets, so a failover to a replica cannot lose a commit whose offsets Kafka already
   * has. Returns the replicas that acknowledged (0 without waiting when none are configured);
   * throws `ReplicaAckError` (retriable) when fewer did within the timeout.
   *
   * WAIT names no key. Sent in one pipeline behind a command on the partition's meta key, it
   * goes where the pipeline goes: on a cluster, to the node that owns the partition's slot, over
   * the same connection the commit went through.
   */
  async waitForReplicas(): Promise<number> {
    const { replicas, timeoutMs } = this.replicaAck;
    if (replicas <= 0) return 0;
    const replies = (await this.redis.pipeline().exists(this.keys.meta).call('WAIT', String(replicas), String(timeoutMs)).exec()) ?? [];
    const [err, acknowledged] = replies[1] ?? [new Error('no reply to WAIT'), null];
    if (err) throw err;
    if (Number(acknowledged) < replicas) throw new ReplicaAckError(this.topic, this.partition, Number(acknowledged), replicas, timeoutMs);
    return Number(acknowledged);
  }

  /**
   * User keys of this partition with an open session (each has a close deadline): the
   * `sessionizer_open_sessions` gauge. A key rarely holds two open sessions at once.
   */
  async openSessionKeys(): Promise<number> {
    return this.redis.zcard(this.keys.closeDeadlines);
  }

  /** Outbox entries not yet confirmed in ClickHouse, oldest first. */
  async pendingOutbox(): Promise<Array<{ seq: number; payload: string }>> {
    const entries = await this.redis.hgetall(this.keys.outbox);
    return Object.entries(entries)
      .map(([seq, payload]) => ({ seq: Number(seq), payload }))
      .sort((a, b) => a.seq - b.seq);
  }

  async ack(epoch: string, seq: number): Promise<void> {
    const result = await this.redis.ackOutbox(this.keys.meta, this.keys.outbox, epoch, String(seq));
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, epoch);
  }
}
