/**
 * The Redis adapter for one partition's session state. Reads are plain commands; every change
 * goes through a Lua script (scripts/), so a batch's state, deadlines, offset and outbox land
 * atomically and only while we hold the partition's epoch.
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { isIdle, newKeyState, type KeyState } from '../engine/engine';
import type { SessionRow } from '../engine/session-row';
import { DEFAULT_SITE } from '../events/visitor-key';
import { CommitAlreadyAppliedError, PartitionFencedError, ReplicaAckError, StateCorruptError, StateDivergedError } from '../errors';
import { decodeIdleRecord, decodeState, encodeIdleRecord, encodeState, expiryMinute } from './codec';
import { PartitionKeys, globEscape } from './keys';
import { scanKeys } from './redis-client';
import type { StateCommands } from './script-loader';

/** Negative results of the scripts, mapped to typed errors in `commit` and `ack`. */
export enum ScriptResult {
  Fenced = -1,
  AlreadyApplied = -2,
  Diverged = -3,
}

export interface PartitionClaim {
  epoch: string;
  /** Commits applied so far; the next commit must start from it. */
  rev: number;
  /** Last applied offset, "-1" when none. */
  offset: string;
  /** Event-time watermark, null before the first batch. */
  watermark: number | null;
  /** Which log the state belongs to: random, made when the partition's state was first claimed. */
  generation: string;
  /** Fingerprint of the message at `offset` (see `messageFingerprint`), "" when unknown. */
  fingerprint: string;
  /** A repair of ClickHouse rows pending (see `markRepair`), null when none. */
  repair: RepairMark | null;
  /** Kafka's id of the topic the state was made from, as stored before this claim; "" when none was. */
  topicId: string;
}

/** A pending repair: until which offset the state is being rebuilt, and how far back sessions may differ. */
export interface RepairMark {
  until: bigint;
  /** Sessions of the repair's users that ended at or after this time (ms) are checked. */
  reachMs: number;
}

/** What the state recorded while a repair was pending, per user key and session id. */
export interface RepairLog {
  users: string[];
  /** The rows the state held when the repair first touched the user. */
  base: Map<string, Map<string, SessionRow>>;
  /** The last row written for a session while repairing; null: it was retracted. */
  writes: Map<string, Map<string, SessionRow | null>>;
}

/**
 * A user's stored value as read: the state under its key (binary, or JSON from an earlier
 * release), or its idle record (codec.ts) in the partition's idle buckets.
 */
export interface StoredValue {
  where: 'key' | 'idle';
  bytes: Buffer;
}

/**
 * Users' stored values in one partition: one MGET of their state keys, then, for the users
 * without one, one script that reads their idle records. Null: nothing stored.
 */
export async function readStoredValues(redis: Redis, keys: PartitionKeys, userKeys: readonly string[]): Promise<Array<StoredValue | null>> {
  if (userKeys.length === 0) return [];
  const values = await redis.mgetBuffer(userKeys.map((k) => keys.user(k)));
  const missing: number[] = [];
  const stored = values.map((bytes, i): StoredValue | null => {
    if (bytes) return { where: 'key', bytes };
    missing.push(i);
    return null;
  });
  if (missing.length === 0) return stored;
  const records = await (redis as Redis & StateCommands).readIdleBuffer(keys.meta, keys.idle, ...missing.map((i) => userKeys[i] as string));
  missing.forEach((i, j) => {
    const bytes = records[j];
    if (bytes) stored[i] = { where: 'idle', bytes };
  });
  return stored;
}

/** The state a stored value holds; null for an idle record that expired at or before `nowMs`. */
export function storedState(userKey: string, stored: StoredValue, nowMs: number): KeyState | null {
  if (stored.where === 'key') return decodeState(userKey, stored.bytes);
  const record = decodeIdleRecord(stored.bytes);
  if (record.expiresAtMinute * 60_000 <= nowMs) return null;
  const state = newKeyState(userKey);
  state.forgottenCount = record.count;
  state.forgottenLastId = record.lastId;
  return state;
}

export interface UserUpdate {
  state: KeyState;
  closeAt: number | null;
  forgetAt: number | null;
}

export interface StateTtl {
  /** For a key with sessions that may still change. */
  activeSeconds: number;
  /** For the idle record of a key whose sessions were all forgotten (its expiry, see sweepIdle). */
  idleSeconds: number;
}

/** REDIS_WAIT_REPLICAS / REDIS_WAIT_TIMEOUT_MS: replica acknowledgement of state commits. */
export interface ReplicaAck {
  /** Replicas that must have a commit before its Kafka offsets are committed; 0 = do not wait. */
  replicas: number;
  timeoutMs: number;
}

/**
 * Calls of `sweepIdle` that go once round a partition's idle buckets: at the worker's pace of one
 * call per `IDLE_SWEEP_INTERVAL_MS`, expired records are deleted within a day.
 */
export const IDLE_SWEEP_CALLS_PER_ROUND = 8_640;
export const IDLE_SWEEP_INTERVAL_MS = 10_000;

export class PartitionStateStore {
  readonly keys: PartitionKeys;
  /**
   * Where each state `loadStates` returned was stored (a state key, an idle record), so that
   * `commit` clears the old place when a user's value moves to the other one.
   */
  private readonly origins = new WeakMap<KeyState, 'k' | 'i'>();

  constructor(
    private readonly redis: Redis & StateCommands,
    prefix: string,
    readonly topic: string,
    readonly partition: number,
    private readonly ttl: StateTtl,
    private readonly replicaAck: ReplicaAck = { replicas: 0, timeoutMs: 0 },
    /** Wall-clock time: when idle records expire. */
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new PartitionKeys(prefix, topic, partition);
  }

  /** Claims the partition; `topicId` (the topic's id now, "" if unknown) is recorded when the state has none. */
  async claim(topicId = ''): Promise<PartitionClaim> {
    const nonce = randomBytes(6).toString('hex');
    const [epoch, rev, offset, watermark, generation, fingerprint, repairUntil, repairReach, storedTopicId] = await this.redis.claimPartition(this.keys.meta, nonce, topicId);
    return {
      epoch: String(epoch),
      rev: Number(rev),
      offset,
      watermark: watermark === '' ? null : Number(watermark),
      generation,
      fingerprint,
      repair: repairUntil === '' ? null : { until: BigInt(repairUntil), reachMs: Number(repairReach) },
      topicId: storedTopicId,
    };
  }

  /**
   * Starts (or extends) a repair after the state lost commits that had applied up to `until`:
   * the users with an open session now, and every user touched until then, get the rows of
   * their sessions that ended at or after `reachMs` checked against the state.
   */
  async markRepair(epoch: string, until: bigint, reachMs: number): Promise<RepairMark> {
    const reach = Number.isFinite(reachMs) ? String(Math.trunc(reachMs)) : '0';
    const result = await this.redis.markRepair(this.keys.meta, this.keys.closeDeadlines, this.keys.repair, epoch, until.toString(), reach);
    if (!Array.isArray(result)) throw new PartitionFencedError(this.topic, this.partition, epoch);
    return { until: BigInt(result[0]), reachMs: Number(result[1]) };
  }

  /**
   * While repairing, before a commit: the users it changes, the rows their states held before
   * the repair first touched them, and the rows the commit writes. Written before the commit, so
   * a crash after it loses nothing the repair needs (and a retried batch records the same).
   */
  async noteRepair(before: ReadonlyMap<string, readonly SessionRow[]>, users: readonly string[], writes: ReadonlyArray<[string, string, SessionRow | null]>): Promise<void> {
    if (users.length === 0) return;
    const marks = await this.redis.hmget(this.keys.repairBase, ...users.map((u) => `${u}\u0000`));
    const pipeline = this.redis.pipeline();
    users.forEach((userKey, i) => {
      if (marks[i] !== null) return;
      const fields: string[] = [`${userKey}\u0000`, '1'];
      for (const row of before.get(userKey) ?? []) fields.push(`${userKey}\u0000${row.session_id}`, JSON.stringify(row));
      pipeline.hset(this.keys.repairBase, ...fields);
    });
    const written = writes.flatMap(([userKey, sessionId, row]) => [`${userKey}\u0000${sessionId}`, row ? JSON.stringify(row) : '']);
    if (written.length > 0) pipeline.hset(this.keys.repairWrites, ...written);
    pipeline.zadd(this.keys.repair, ...users.flatMap((u) => ['0', u]));
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }

  /** Everything `markRepair` and `noteRepair` recorded (visitor keys → session id → row). */
  async repairLog(): Promise<RepairLog> {
    const [users, base, writes] = await Promise.all([
      this.redis.zrange(this.keys.repair, 0, -1),
      this.redis.hgetall(this.keys.repairBase),
      this.redis.hgetall(this.keys.repairWrites),
    ]);
    const log: RepairLog = { users, base: new Map(), writes: new Map() };
    const place = <T>(into: Map<string, Map<string, T>>, field: string, value: T) => {
      const cut = field.lastIndexOf('\u0000'); // session ids are hex: the last NUL is the separator
      const [userKey, sessionId] = [field.slice(0, cut), field.slice(cut + 1)];
      if (sessionId === '') return;
      let rows = into.get(userKey);
      if (!rows) into.set(userKey, (rows = new Map()));
      rows.set(sessionId, value);
    };
    for (const [field, value] of Object.entries(base)) place(log.base, field, loggedRow(value));
    for (const [field, value] of Object.entries(writes)) place(log.writes, field, value === '' ? null : loggedRow(value));
    return log;
  }

  async clearRepair(epoch: string): Promise<void> {
    const result = await this.redis.clearRepair(this.keys.meta, this.keys.repair, this.keys.repairBase, this.keys.repairWrites, epoch);
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, epoch);
  }

  /**
   * Deletes every key of this partition (states, idle records, deadlines, outbox, meta): the operator's choice
   * when the state belongs to another log. SCAN, not KEYS, so a shared Redis is not blocked.
   */
  async reset(): Promise<number> {
    let deleted = 0;
    // Every key of the partition is in one slot, so one UNLINK per batch works on a cluster too.
    const keys = await scanKeys(this.redis, `${globEscape(this.keys.tag)}*`);
    for (let i = 0; i < keys.length; i += 1000) deleted += await this.redis.unlink(...keys.slice(i, i + 1000));
    return deleted;
  }

  /**
   * The users' states: from their state keys, else from their idle records. A user with an idle
   * record that has expired gets an empty state (as one with nothing stored), which `commit`
   * knows to clear the record of.
   */
  async loadStates(userKeys: readonly string[]): Promise<Map<string, KeyState>> {
    const states = new Map<string, KeyState>();
    if (userKeys.length === 0) return states;
    const stored = await readStoredValues(this.redis, this.keys, userKeys);
    const now = this.now();
    userKeys.forEach((userKey, i) => {
      const value = stored[i];
      if (!value) return;
      let state: KeyState | null;
      try {
        state = storedState(userKey, value, now) ?? newKeyState(userKey);
      } catch (err) {
        throw new StateCorruptError(value.where === 'key' ? this.keys.user(userKey) : `${this.keys.idle}… field ${userKey}`, err);
      }
      this.origins.set(state, value.where === 'key' ? 'k' : 'i');
      states.set(userKey, state);
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
   * `CommitAlreadyAppliedError` when an earlier attempt of this same commit (same `commitId`)
   * landed although its reply was lost, and `StateDivergedError` when `rev` is not ours for any
   * other reason (the state went back in time): never read as success.
   */
  async commit(params: {
    epoch: string;
    rev: number;
    offset: string;
    watermark: number;
    /** The session rows to write, as their insert body (empty: none). */
    payload: Buffer;
    /** Random per commit, the same for each attempt of it. */
    commitId: string;
    /** Of the message at `offset`; "" keeps the stored one (a commit that applies no message). */
    fingerprint: string;
    updates: readonly UserUpdate[];
  }): Promise<number> {
    const keys = [this.keys.meta, this.keys.closeDeadlines, this.keys.forgetDeadlines, this.keys.outbox];
    const args: Array<string | Buffer> = [params.epoch, String(params.rev), params.offset, String(params.watermark), params.payload, params.commitId, params.fingerprint, this.keys.idle];
    const idleExpiry = expiryMinute(this.now(), this.ttl.idleSeconds);
    for (const update of params.updates) {
      const state = update.state;
      keys.push(this.keys.user(state.userKey));
      let what: 'k' | 'i' | 'd';
      let value: Buffer | string = '';
      if (!isIdle(state)) {
        what = 'k';
        value = encodeState(state);
      } else if (state.forgottenCount > 0 || state.forgottenLastId !== '') {
        what = 'i';
        value = encodeIdleRecord({ count: state.forgottenCount, lastId: state.forgottenLastId, expiresAtMinute: idleExpiry });
      } else {
        what = 'd'; // nothing to number a next session by: as if the user had never been seen
      }
      args.push(
        state.userKey,
        value,
        String(this.ttl.activeSeconds),
        update.closeAt === null ? '' : String(update.closeAt),
        update.forgetAt === null ? '' : String(update.forgetAt),
        what,
        this.origins.get(state) ?? '',
      );
    }
    const result = await this.redis.commitBatch(keys.length, ...keys, ...args);
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, params.epoch);
    if (result === ScriptResult.AlreadyApplied) throw new CommitAlreadyAppliedError(this.topic, this.partition, params.rev);
    if (result === ScriptResult.Diverged) throw new StateDivergedError(this.topic, this.partition, params.rev);
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
   * Deletes the expired idle records of the next few idle buckets (scripts/sweepIdle-1.lua):
   * called every `IDLE_SWEEP_INTERVAL_MS`, it goes round every bucket within a day. Returns the
   * records deleted. A record is treated as absent from its expiry on, swept or not.
   */
  async sweepIdle(epoch: string): Promise<number> {
    const minute = Math.floor(this.now() / 60_000);
    const result = await this.redis.sweepIdle(this.keys.meta, epoch, this.keys.idle, String(minute), String(IDLE_SWEEP_CALLS_PER_ROUND));
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, epoch);
    return result;
  }

  /**
   * User keys of this partition with an open session (each has a close deadline): the
   * `sessionizer_open_sessions` gauge. A key rarely holds two open sessions at once.
   */
  async openSessionKeys(): Promise<number> {
    return this.redis.zcard(this.keys.closeDeadlines);
  }

  /** Outbox entries not yet confirmed in ClickHouse, oldest first (payloads as stored: bytes). */
  async pendingOutbox(): Promise<Array<{ seq: number; payload: Buffer }>> {
    const entries = await this.redis.hgetallBuffer(this.keys.outbox);
    return Object.entries(entries)
      .map(([seq, payload]) => ({ seq: Number(seq), payload }))
      .sort((a, b) => a.seq - b.seq);
  }

  async ack(epoch: string, seq: number): Promise<void> {
    const result = await this.redis.ackOutbox(this.keys.meta, this.keys.outbox, epoch, String(seq));
    if (result === ScriptResult.Fenced) throw new PartitionFencedError(this.topic, this.partition, epoch);
  }
}


/** A row the repair log holds as JSON; one recorded before sites has no `site`: `default`. */
function loggedRow(json: string): SessionRow {
  const row = JSON.parse(json) as SessionRow;
  if (row.site === undefined) return { ...row, site: DEFAULT_SITE };
  return row;
}
