/**
 * Everything one worker does for one partition it owns, in the order that makes a crash at any
 * point harmless:
 *
 *   1. invalid messages → dead-letter topic; valid events → `events` table (idempotent by key);
 *   2. engine over the batch's users and the users whose deadlines fell due (while 1's insert
 *      runs: step 3 waits for it);
 *   3. one Redis script commits their states, the applied offset, the watermark and the session
 *      rows to write (the outbox) — atomically, and only while we hold the partition's epoch;
 *   4. the caller commits the Kafka offset, while the outbox rows go to `sessions` with a
 *      deduplication token made of the partition and the outbox sequence number; then the
 *      entry is acknowledged (the next commit waits for that).
 *
 * A redelivered message at or below the applied offset is skipped; an outbox entry left by a
 * crash is flushed (with its original token) by whoever claims the partition next.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { applyEvent, newKeyState, nextDeadlines, reconcile, type EngineConfig, type KeyState, type SessionChange } from '../engine/engine';
import { CommitAlreadyAppliedError, StateLogMismatchError } from '../errors';
import { deadLetterSummaryFor } from './dead-letter-summary';
import type { EventFields } from '../events/session-event';
import type { WorkerMetrics } from '../observability/metrics';
import type { EventRow, EventSource } from '../clickhouse/event-row';
import { encodeSessionRows, outboxBody, sessionValues, signedRows, type SessionValues } from '../clickhouse/session-sink';
import { repairRows, type StoredSessionRow } from '../engine/row-repair';
import { visitorKeyOfRow, type SessionRow } from '../engine/session-row';
import { outboxToken } from '../state/keys';
import { IDLE_SWEEP_INTERVAL_MS, type PartitionClaim, type PartitionStateStore, type RepairMark, type UserUpdate } from '../state/partition-state-store';
import { decideStart, messageFingerprint, type LogBounds } from './log-position';
import { planBatch, type IncomingMessage, type PlannedEvent, type RejectedMessage } from './batch-plan';
import { withRetry, type RetryHooks } from './retry';

export interface SessionSinkPort {
  insertSessions(rows: readonly SessionValues[] | Buffer, deduplicationToken: string): Promise<void>;
  eventBatch(withSource: true, messageBytes: number): EventBatchPort;
  insertEventBatch(batch: EventBatchPort, deduplicationToken: string): Promise<void>;
}

/** `events` rows collected (encoded) as a batch is planned. */
export interface EventBatchPort {
  add(row: EventRow): void;
  readonly count: number;
}

/** Sends to the dead-letter topic, planned so that every send fits the broker's size limit. */
export interface DeadLetterPort {
  plan(topic: string, partition: number, rejected: readonly RejectedMessage[]): Promise<Array<{ replaced: number }>>;
  send(chunk: { replaced: number }): Promise<void>;
}

/** What Kafka holds for a partition: its log's bounds and the group's committed offset. */
export interface KafkaLogPort {
  bounds(topic: string, partition: number): Promise<LogBounds>;
  /** Kafka's id of the topic now (new when it was re-created); null when it cannot be known. */
  topicId(topic: string): Promise<string | null>;
}

/** What to do with a partition whose Redis state belongs to another log: stop, or drop the state. */
export type LogMismatchPolicy = 'fail' | 'reset';

/** Every row ClickHouse holds for some users' recent sessions (for a repair after lost commits). */
export interface StoredSessionsPort {
  rowsOf(userKeys: readonly string[], endedSinceMs: number, sessionIds: readonly string[]): Promise<Map<string, StoredSessionRow[]>>;
}

export interface ProcessorDeps {
  store: PartitionStateStore;
  storedSessions: StoredSessionsPort;
  kafkaLog: KafkaLogPort;
  onLogMismatch: LogMismatchPolicy;
  sink: SessionSinkPort;
  deadLetter: DeadLetterPort;
  eventRow: (fields: EventFields, ts: number, raw: string | Uint8Array, source: EventSource) => EventRow;
  engine: EngineConfig;
  closeDelayMs: number;
  maxClockSkewMs: number;
  now: () => number;
  metrics: WorkerMetrics;
  log: Logger;
  /** Users whose deadlines are processed per batch or tick, at most (the rest wait for the next). */
  maxDueUsers?: number;
  /**
   * How long a log that ends before the state's offset is read again before it counts as
   * another log: after a leader change the new leader's high watermark can lag for a moment.
   */
  logCatchUpMs?: number;
}

const DEFAULT_MAX_DUE_USERS = 5_000;
const DEFAULT_LOG_CATCH_UP_MS = 30_000;
/** Users whose stored rows one repair step reads and corrects (one query, one commit). */
const REPAIR_USERS_PER_STEP = 200;

export class PartitionProcessor {
  private epoch = '';
  private rev = 0;
  /** Which log the state belongs to; part of every ClickHouse deduplication token. */
  private generation = '';
  /** Where the consumer must seek to before the next batch counts (null: nothing to do). */
  private seekTarget: string | null = null;
  /**
   * The first offset the next batch may start from, when it is not the one after the applied
   * offset: where the last seek sent the consumer (the log's start after retention or a reset).
   */
  private readFloor = -1n;
  /** The first message read after a claim must be this one (the state's last applied message). */
  private verify: { offset: bigint; fingerprint: string } | null = null;
  /**
   * Set while the state is being rebuilt after it lost commits: once it has applied this offset
   * again, the rows ClickHouse holds for the users touched meanwhile are checked and corrected.
   */
  private repair: RepairMark | null = null;
  /** Fingerprint of the message at the applied offset, "" when unknown. */
  private fingerprint = '';
  /** Kafka's id of the topic the state is made from, "" when unknown. */
  private topicId = '';
  private appliedOffset = '-1';
  private watermark = -Infinity;
  private caughtUp = false;
  /** Serialises batches and ticks: both change this partition's state. */
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  /** When `inFlight` last rose from 0, while it is above 0. */
  private busySince: number | null = null;
  /**
   * The last commit's session rows on their way to ClickHouse, while the next batch is read and
   * worked on. They are durable already (the commit put them in the Redis outbox, which whoever
   * claims the partition next flushes), so the batch's Kafka offset need not wait for them. At
   * most one is in flight: the next commit waits for it (`settleFlush`), so outbox entries land
   * in order and a failing ClickHouse still stops consumption.
   */
  private flushing: Promise<void> = Promise.resolve();
  /** Since when batches have shown a log that ends before the applied offset (null: they do not). */
  private shortLogSince: number | null = null;
  /** When expired idle records were last swept (`sweepIdleIfDue`). */
  private lastSweepAt = -Infinity;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly deps: ProcessorDeps,
  ) {}

  /**
   * Takes the partition over: bumps its epoch, flushes any outbox entry a crash left behind, and
   * decides where reading goes on from the state's applied offset, whatever the group committed
   * (`seekTo()` tells the caller where to seek).
   */
  async claim(hooks: RetryHooks = {}): Promise<void> {
    const { store, log, metrics } = this.deps;
    const where = { topic: this.topic, partition: this.partition };
    const topicId = (await this.deps.kafkaLog.topicId(this.topic)) ?? '';
    let claim = await withRetry('claim partition', () => store.claim(topicId), hooks);
    let bounds = await withRetry('read log offsets', () => this.deps.kafkaLog.bounds(this.topic, this.partition), hooks);
    // A state made from another topic id is another log whatever the offsets say: no need to
    // wait for a lagging leader's high watermark to catch up (that wait stopped a second local
    // run only after 30 s).
    const otherTopic = claim.topicId !== '' && topicId !== '' && claim.topicId !== topicId;
    if (!otherTopic && bounds.high <= BigInt(claim.offset)) bounds = await this.boundsReaching(BigInt(claim.offset), hooks);
    let decision = decideStart({ offset: BigInt(claim.offset), fingerprint: claim.fingerprint }, bounds);
    if (otherTopic) {
      decision = { kind: 'mismatch', detail: `the topic was re-created (its id is ${topicId}; the state was made from ${claim.topicId})` };
    }
    if (decision.kind === 'mismatch') {
      claim = await this.resetState(claim.offset, decision.detail, hooks, topicId);
      decision = decideStart({ offset: -1n, fingerprint: '' }, bounds);
    }
    if (decision.kind === 'mismatch') throw new StateLogMismatchError(this.topic, this.partition, claim.offset, decision.detail);
    this.adopt(claim);
    this.topicId = topicId || claim.topicId;
    await this.flushPendingOutbox(hooks);
    this.seekTarget = decision.from.toString();
    this.verify = decision.verify;
    if (decision.rewound > 0n) {
      // The lost commits may have written session rows already: check them once they are rebuilt.
      // Sessions the lost commits can have written: those the restored state could still change.
      const reach = this.watermark - this.deps.engine.latenessMs - this.deps.engine.timeoutMs;
      this.repair = await withRetry('mark repair', () => store.markRepair(this.epoch, bounds.committed - 1n, reach), hooks);
      metrics.stateRewinds.inc();
      log.error(
        { ...where, stateOffset: claim.offset, committedOffset: bounds.committed.toString(), messages: decision.rewound.toString() },
        'the Redis state lost recent writes (restored from an older copy, or a failover to a lagging replica): reading again from its offset, so no event is lost; ' +
          'the session rows those writes had sent to ClickHouse are corrected once the state has caught up',
      );
    }
    if (decision.deletedUnapplied > 0n) {
      metrics.eventsDeletedUnapplied.inc(Number(decision.deletedUnapplied));
      log.error(
        { ...where, stateOffset: claim.offset, logStart: bounds.low.toString(), messages: decision.deletedUnapplied.toString() },
        'messages were deleted from Kafka (retention) before the worker applied them: they are lost to the stream; if they reached the events table, recalculation counts them',
      );
    }
    log.info({ ...where, epoch: this.epoch, offset: this.appliedOffset, readFrom: this.seekTarget }, 'partition claimed');
  }

  /** Where the consumer must seek to before this partition's next batch counts, once. */
  takeSeek(): string | null {
    const target = this.seekTarget;
    this.seekTarget = null;
    if (target !== null) this.readFloor = BigInt(target);
    return target;
  }

  /**
   * The offset of the next message to apply: a batch fetched from further on would skip
   * messages never applied (the worker sends the consumer back instead).
   */
  get nextOffset(): bigint {
    const next = BigInt(this.appliedOffset) + 1n;
    return next > this.readFloor ? next : this.readFloor;
  }

  /** Retention deleted the log up to `low` before these messages were applied: counted, read on from there. */
  skipDeleted(low: bigint): void {
    const lost = low - this.nextOffset;
    if (lost <= 0n) return;
    this.readFloor = low;
    this.deps.metrics.eventsDeletedUnapplied.inc(Number(lost));
    this.deps.log.error(
      { topic: this.topic, partition: this.partition, appliedOffset: this.appliedOffset, logStart: low.toString(), messages: lost.toString() },
      'messages were deleted from Kafka (retention) before the worker applied them: they are lost to the stream; if they reached the events table, recalculation counts them',
    );
  }

  private adopt(claim: PartitionClaim): void {
    this.epoch = claim.epoch;
    this.rev = claim.rev;
    this.generation = claim.generation;
    this.appliedOffset = claim.offset;
    this.watermark = claim.watermark ?? -Infinity;
    this.repair = claim.repair;
    this.fingerprint = claim.fingerprint;
  }

  /** The state belongs to another log: stop (the default), or drop it when the operator chose so. */
  private async resetState(stateOffset: string, detail: string, hooks: RetryHooks, topicId = ''): Promise<PartitionClaim> {
    if (this.deps.onLogMismatch !== 'reset') throw new StateLogMismatchError(this.topic, this.partition, stateOffset, detail);
    this.deps.log.warn({ topic: this.topic, partition: this.partition, stateOffset, detail }, 'state belongs to another log: resetting it (STATE_LOG_MISMATCH=reset)');
    this.deps.metrics.stateResets.inc();
    await withRetry('reset partition state', () => this.deps.store.reset(), hooks);
    return withRetry('claim partition', () => this.deps.store.claim(topicId), hooks);
  }

  handleBatch(messages: readonly IncomingMessage[], highWatermark: string, hooks: RetryHooks = {}): Promise<void> {
    return this.serialised(() => this.processBatch(messages, highWatermark, hooks));
  }

  /** The partition's high watermark, learned while no batch arrives: are we caught up? */
  noteHighWatermark(highWatermark: string): void {
    if (this.epoch) this.caughtUp = BigInt(highWatermark) - 1n <= BigInt(this.appliedOffset);
  }

  /** Closes sessions by the clock when the partition is caught up and nothing else arrives. */
  tick(hooks: RetryHooks = {}): Promise<void> {
    return this.serialised(async () => {
      if (!this.epoch) return;
      await this.repairIfDue(hooks);
      await this.sweepIdleIfDue(hooks);
      if (!this.caughtUp || !Number.isFinite(this.watermark)) return;
      await this.advance(new Map(), this.appliedOffset, hooks);
    });
  }

  /** Waits for the session rows in flight (shutdown); a failure was logged when it happened. */
  drain(): Promise<void> {
    return this.flushing.catch(() => undefined);
  }

  /** Whether a batch or tick is in progress or waiting (a clock tick then has nothing to add). */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** How long the processor has been busy without a break (0 when it is not). */
  busyForMs(now: number): number {
    return this.busySince === null ? 0 : now - this.busySince;
  }

  private serialised(fn: () => Promise<void>): Promise<void> {
    if (this.inFlight === 0) this.busySince = this.deps.now();
    this.inFlight += 1;
    const run = this.queue.then(fn, fn).finally(() => {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.busySince = null;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async processBatch(messages: readonly IncomingMessage[], highWatermark: string, hooks: RetryHooks): Promise<void> {
    if (this.verify && !(await this.verifyFirst(messages, hooks))) return;
    if (!(await this.sameLog(messages, highWatermark, hooks))) return;
    const started = this.deps.now();
    const applied = BigInt(this.appliedOffset);
    const fresh = messages.filter((m) => BigInt(m.offset) > applied);
    const last = messages[messages.length - 1];
    if (last) this.caughtUp = BigInt(highWatermark) - 1n <= BigInt(last.offset);
    if (fresh.length === 0) return;
    const firstOffset = (fresh[0] as IncomingMessage).offset;
    const lastOffset = (fresh[fresh.length - 1] as IncomingMessage).offset;
    if (applied >= 0n && BigInt(firstOffset) !== applied + 1n) {
      // Legitimate only where the log itself has no message there (transaction markers,
      // compaction, retention); worth a line, as it is also what a skipped fetch looks like.
      this.deps.log.warn({ topic: this.topic, partition: this.partition, appliedOffset: this.appliedOffset, firstOffset }, 'batch does not start right after the applied offset');
    }
    const { metrics } = this.deps;
    metrics.eventsConsumed.inc(fresh.length);
    metrics.batchSize.observe(fresh.length);
    // Lag counts from what is applied, not from what was fetched: a batch that cannot be
    // written keeps showing its messages as lag.
    const lagLabels = { topic: this.topic, partition: String(this.partition) };
    metrics.consumerLag.set(lagLabels, Number(BigInt(highWatermark) - 1n - BigInt(this.appliedOffset)));

    const { topic, partition } = this;
    let messageBytes = 0;
    for (const m of fresh) messageBytes += m.value?.length ?? 0;
    const eventRows = this.deps.sink.eventBatch(true, messageBytes);
    const plan = planBatch(fresh, this.watermark, started + this.deps.maxClockSkewMs, (fields, ts, raw, offset, site) =>
      eventRows.add(this.deps.eventRow(fields, ts, raw, { topic, partition, offset, receivedAtMs: started, site })),
    );
    if (plan.rejected.length > 0) {
      // Each send is retried on its own, so a retry never sends the accepted ones again.
      for (const chunk of await this.deps.deadLetter.plan(this.topic, this.partition, plan.rejected)) {
        await withRetry('dead-letter', () => this.deps.deadLetter.send(chunk), hooks);
        if (chunk.replaced > 0) metrics.deadLettersReplaced.inc(chunk.replaced);
      }
      for (const r of plan.rejected) metrics.eventsInvalid.inc({ reason: r.error.field || 'message' });
      deadLetterSummaryFor(this.deps.log, this.deps.now).note(topic, plan.rejected.map((r) => r.error.message));
    }
    // The events insert runs while the engine works on the batch; the state commit waits for
    // it, because a committed offset makes a redelivery skip these messages, so their rows must
    // be in `events` first.
    const eventsWritten =
      eventRows.count > 0
        ? this.timedInsert(() => this.deps.sink.insertEventBatch(eventRows, `${topic}:${partition}:${this.generation}:${firstOffset}-${lastOffset}:events`), hooks).then(() =>
            metrics.eventsValid.inc(eventRows.count),
          )
        : Promise.resolve();
    // Awaited below; this only keeps a failure from being reported as unhandled when the engine
    // step fails first.
    eventsWritten.catch(() => undefined);
    const fingerprint = messageFingerprint(fresh[fresh.length - 1] as IncomingMessage);
    await this.advance(plan.byUser, lastOffset, hooks, plan.watermark, eventsWritten, fingerprint);
    await eventsWritten;
    metrics.consumerLag.set(lagLabels, Number(BigInt(highWatermark) - 1n - BigInt(lastOffset)));
    metrics.batchSeconds.observe((this.deps.now() - started) / 1000);
    await this.repairIfDue(hooks);
    // Here too, not only on the clock tick: a partition that always has a batch under way gets no tick.
    await this.sweepIdleIfDue(hooks);
  }

  /**
   * Every `IDLE_SWEEP_INTERVAL_MS`: deletes the expired idle records of the next few buckets, so
   * that every record past USER_RECORD_TTL_DAYS is gone within a day (until then it is only
   * ignored). One small script; fenced like a commit.
   */
  private async sweepIdleIfDue(hooks: RetryHooks): Promise<void> {
    const now = this.deps.now();
    if (now - this.lastSweepAt < IDLE_SWEEP_INTERVAL_MS) return;
    this.lastSweepAt = now;
    await withRetry('sweep idle records', () => this.deps.store.sweepIdle(this.epoch), hooks);
  }

  /**
   * After the state lost commits and has applied their offsets again: for every user touched
   * meanwhile, the rows ClickHouse holds (the lost commits' among them) are compared with what
   * the state says it wrote, and corrected (engine/row-repair.ts), through the outbox like any
   * commit. Reads ClickHouse only after every earlier outbox entry landed, so running it again
   * after a crash finds nothing more to do.
   */
  private async repairIfDue(hooks: RetryHooks): Promise<void> {
    const repair = this.repair;
    if (repair === null || BigInt(this.appliedOffset) < repair.until) return;
    const { store, engine, metrics } = this.deps;
    await this.settleFlush(hooks);
    const log = await withRetry('read repair log', () => store.repairLog(), hooks);
    let corrected = 0;
    for (let i = 0; i < log.users.length; i += REPAIR_USERS_PER_STEP) {
      const step = log.users.slice(i, i + REPAIR_USERS_PER_STEP);
      const states = await withRetry('load states', () => store.loadStates(step), hooks);
      const wanted = new Map(step.map((userKey) => [userKey, wantedRows(states.get(userKey), log.base.get(userKey), log.writes.get(userKey))]));
      const ids = [...wanted.values()].flatMap((rows) => [...rows.keys()]);
      const stored = await withRetry('read stored sessions', () => this.deps.storedSessions.rowsOf(step, repair.reachMs, ids), hooks);
      const rows: SessionValues[] = [];
      const updates: UserUpdate[] = [];
      for (const userKey of step) {
        const fix = repairRows(wanted.get(userKey) as Map<string, SessionRow | null>, stored.get(userKey) ?? []);
        if (fix.rows.length === 0) continue;
        for (const row of fix.rows) rows.push(sessionValues(row));
        const state = states.get(userKey);
        if (!state) continue;
        // The state's written rows now carry the versions just written.
        for (const session of state.sessions) {
          const again = session.written && fix.rewritten.get(session.written.session_id);
          if (again) session.written = again;
        }
        updates.push({ state, ...nextDeadlines(state, engine) });
      }
      if (rows.length === 0) continue;
      const body = encodeSessionRows(rows);
      await this.settleFlush(hooks);
      const seq = await this.commit(this.appliedOffset, this.watermark, body, updates, '', hooks);
      if (seq > 0) this.flushInBackground(seq, body, hooks);
      corrected += rows.length;
    }
    await this.settleFlush(hooks);
    await withRetry('end repair', () => store.clearRepair(this.epoch), hooks);
    this.repair = null;
    metrics.repairedRows.inc(corrected);
    this.deps.log.warn({ topic: this.topic, partition: this.partition, users: log.users.length, rows: corrected }, 'session rows of the lost state commits corrected');
  }

  /**
   * The first batch after a claim starts at the state's last applied message: is it the same
   * message? If not, the state belongs to another log. Returns whether the batch may be applied.
   */
  private async verifyFirst(messages: readonly IncomingMessage[], hooks: RetryHooks): Promise<boolean> {
    const expected = this.verify as { offset: bigint; fingerprint: string };
    const first = messages[0];
    if (!first) return true;
    if (BigInt(first.offset) < expected.offset) {
      // Fetched before our seek took effect: read again from where the check needs.
      this.seekTarget = expected.offset.toString();
      return false;
    }
    this.verify = null;
    if (BigInt(first.offset) > expected.offset || messageFingerprint(first) === expected.fingerprint) return true;
    return this.anotherLog(`the message at offset ${expected.offset} is not the one the state applied last (the topic was re-created, or Kafka started afresh)`, hooks);
  }

  /**
   * Every batch, while the partition is held: a log that ends before the state's offset, or a
   * batch that shows another message at the state's offset (the consumer fell back after the
   * topic was re-created under it), is not the log the state was made from.
   */
  private async sameLog(messages: readonly IncomingMessage[], highWatermark: string, hooks: RetryHooks): Promise<boolean> {
    // Asked after the batch was fetched: a topic re-created before the fetch shows its new id
    // here, so no message of another log is ever applied to this state.
    const topicId = this.topicId === '' ? null : await this.deps.kafkaLog.topicId(this.topic);
    if (topicId !== null && topicId !== this.topicId) {
      return this.anotherLog(`the topic was re-created (its id is ${topicId}; the state was made from ${this.topicId})`, hooks, topicId);
    }
    const applied = BigInt(this.appliedOffset);
    if (applied < 0n) return true;
    if (BigInt(highWatermark) <= applied) {
      // A new leader's high watermark can lag behind for a moment after a broker failed: such a
      // batch has nothing new (a consumer never sees past the high watermark), and waiting here
      // would hold the partition up. Only a log that stays shorter than the state for
      // `logCatchUpMs` is checked, and found to be another log.
      const now = this.deps.now();
      this.shortLogSince ??= now;
      if (now - this.shortLogSince >= (this.deps.logCatchUpMs ?? DEFAULT_LOG_CATCH_UP_MS)) {
        const { high } = await this.boundsReaching(applied, hooks);
        if (high <= applied) return this.anotherLog(`the log ends at offset ${high - 1n} (next ${high}) but the state has applied offset ${applied}`, hooks);
        this.shortLogSince = null;
      }
    } else {
      this.shortLogSince = null;
    }
    const first = messages[0];
    if (!first || BigInt(first.offset) > applied || this.fingerprint === '') return true;
    const atApplied = messages.find((m) => BigInt(m.offset) === applied);
    if (!atApplied || messageFingerprint(atApplied) === this.fingerprint) return true;
    return this.anotherLog(`the message at offset ${applied} is not the one the state applied last (the topic was re-created, or Kafka started afresh)`, hooks);
  }

  /**
   * The log's bounds once its end is past `offset`, or as they stand after `logCatchUpMs`: a
   * high watermark below what was applied is only evidence of another log if it stays so (a new
   * leader's watermark catches up within moments).
   */
  private async boundsReaching(offset: bigint, hooks: RetryHooks): Promise<LogBounds> {
    const deadline = this.deps.now() + (this.deps.logCatchUpMs ?? DEFAULT_LOG_CATCH_UP_MS);
    for (;;) {
      const bounds = await withRetry('read log offsets', () => this.deps.kafkaLog.bounds(this.topic, this.partition), hooks);
      if (bounds.high > offset || this.deps.now() >= deadline || hooks.shouldContinue?.() === false) return bounds;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Stops (the default policy) or resets the state and reads the new log from its start. */
  private async anotherLog(detail: string, hooks: RetryHooks, topicId?: string): Promise<false> {
    const current = topicId ?? (await this.deps.kafkaLog.topicId(this.topic)) ?? '';
    this.adopt(await this.resetState(this.appliedOffset, detail, hooks, current));
    this.topicId = current;
    const bounds = await withRetry('read log offsets', () => this.deps.kafkaLog.bounds(this.topic, this.partition), hooks);
    this.seekTarget = (bounds.low > 0n ? bounds.low : 0n).toString();
    return false;
  }

  /**
   * Runs the engine for the batch's users and the users whose deadlines are due, commits the
   * result, and writes its session rows.
   */
  private async advance(
    byUser: Map<string, PlannedEvent[]>,
    toOffset: string,
    hooks: RetryHooks,
    watermark = this.watermark,
    beforeCommit: Promise<void> = Promise.resolve(),
    fingerprint = '',
  ): Promise<void> {
    const { store, engine, metrics } = this.deps;
    const closeBound = this.caughtUp ? this.deps.now() - this.deps.closeDelayMs : -Infinity;
    const due = await withRetry('load deadlines', () => store.dueUsers(Math.max(watermark, closeBound), watermark, this.deps.maxDueUsers ?? DEFAULT_MAX_DUE_USERS), hooks);
    const users = new Set([...byUser.keys(), ...due]);
    if (users.size === 0 && toOffset === this.appliedOffset) return;

    const states = await withRetry('load states', () => store.loadStates([...users]), hooks);
    // While repairing: the rows each user's state held before the repair first changes it.
    const before = this.repair ? writtenRowsOf(states) : null;
    const changes: SessionChange[] = [];
    const updates: UserUpdate[] = [];
    for (const userKey of users) {
      const state = states.get(userKey) ?? newKeyState(userKey);
      for (const planned of byUser.get(userKey) ?? []) {
        const outcome = applyEvent(state, planned.event, engine, planned.arrivalWatermark);
        if (outcome === 'late') metrics.eventsLate.inc();
        else if (outcome === 'duplicate') metrics.eventsDuplicate.inc();
      }
      changes.push(...reconcile(state, engine, watermark, closeBound));
      const { closeAt, forgetAt } = nextDeadlines(state, engine);
      updates.push({ state, closeAt, forgetAt });
    }
    const rows = signedRows(changes).map(sessionValues);
    // The outbox keeps the rows as the insert's body: encoded once, sent as stored.
    const body = rows.length > 0 ? encodeSessionRows(rows) : NO_ROWS;
    if (before) {
      const writes = changes.flatMap((c): Array<[string, string, SessionRow | null]> => {
        const row = c.write ?? c.cancel;
        return row ? [[visitorKeyOfRow(row), row.session_id, c.write ?? null]] : [];
      });
      await withRetry('note repair', () => store.noteRepair(before, [...users], writes), hooks);
    }
    await beforeCommit;
    await this.settleFlush(hooks);
    const commitStarted = this.deps.now();
    const seq = await this.commit(toOffset, watermark, body, updates, fingerprint, hooks);
    metrics.redisScriptSeconds.observe((this.deps.now() - commitStarted) / 1000);
    this.appliedOffset = toOffset;
    this.watermark = watermark;
    if (fingerprint !== '') this.fingerprint = fingerprint;
    countChanges(changes, metrics);
    if (seq > 0) this.flushInBackground(seq, body, hooks);
  }

  /**
   * Before a commit: the previous commit's rows have landed. If their flush failed (an error no
   * retry fixes, or its retries were stopped), every pending outbox entry is sent again now,
   * with this batch's retries; until that succeeds, each commit tries again first.
   */
  private async settleFlush(hooks: RetryHooks): Promise<void> {
    try {
      await this.flushing;
    } catch {
      const again = this.flushPendingOutbox(hooks);
      this.flushing = again;
      await again;
    }
  }

  private flushInBackground(seq: number, body: Buffer, hooks: RetryHooks): void {
    const flush = this.flushOutboxEntry(seq, body, hooks);
    // If it fails, the outbox keeps the rows and the next commit sends them again
    // (`settleFlush`); this only reports the failure, also when no next commit comes.
    flush.catch((err: unknown) =>
      this.deps.log.warn({ err, topic: this.topic, partition: this.partition, seq }, 'session rows not written yet; they stay in the outbox'),
    );
    this.flushing = flush;
  }

  private async commit(toOffset: string, watermark: number, payload: Buffer, updates: UserUpdate[], fingerprint: string, hooks: RetryHooks): Promise<number> {
    const params = {
      epoch: this.epoch,
      rev: this.rev,
      offset: toOffset,
      watermark,
      payload,
      // Tells a retried attempt that landed (its reply lost) from a state that went back in
      // time, which also shows as an unexpected rev and must never count as success.
      commitId: randomBytes(8).toString('hex'),
      fingerprint,
      updates,
    };
    try {
      const seq = await withRetry('commit state', () => this.deps.store.commit(params), hooks);
      this.rev += 1;
      // With REDIS_WAIT_REPLICAS: the commit is on enough replicas before its Kafka offset is.
      await withRetry('wait for replicas', () => this.deps.store.waitForReplicas(), hooks);
      return seq;
    } catch (err) {
      if (!(err instanceof CommitAlreadyAppliedError)) throw err;
      // The reply of an attempt that landed was lost; its outbox entry is in Redis, flush it
      // like any pending one.
      this.rev += 1;
      this.appliedOffset = toOffset;
      this.watermark = watermark;
      await this.flushPendingOutbox(hooks);
      return 0;
    }
  }

  private async flushPendingOutbox(hooks: RetryHooks): Promise<void> {
    const pending = await withRetry('read outbox', () => this.deps.store.pendingOutbox(), hooks);
    for (const entry of pending) {
      await this.flushOutboxEntry(entry.seq, entry.payload, hooks);
    }
  }

  /** Inserts an outbox entry's rows (its payload as stored) under the entry's token, then acks it. */
  private async flushOutboxEntry(seq: number, payload: Buffer, hooks: RetryHooks): Promise<void> {
    const token = outboxToken(this.topic, this.partition, this.generation, seq, payload);
    const body = outboxBody(payload);
    await this.timedInsert(() => this.deps.sink.insertSessions(body, token), hooks);
    await withRetry('ack outbox', () => this.deps.store.ack(this.epoch, seq), hooks);
  }

  private async timedInsert(insert: () => Promise<void>, hooks: RetryHooks): Promise<void> {
    const { metrics } = this.deps;
    await withRetry(
      'clickhouse insert',
      async () => {
        const started = this.deps.now();
        try {
          await insert();
        } catch (err) {
          metrics.clickhouseErrors.inc();
          throw err;
        }
        metrics.clickhouseFlushSeconds.observe((this.deps.now() - started) / 1000);
      },
      hooks,
    );
  }
}

/** The outbox payload of a commit that writes no session rows. */
const NO_ROWS = Buffer.alloc(0);

function countChanges(changes: readonly SessionChange[], metrics: WorkerMetrics): void {
  for (const change of changes) {
    if (change.kind === 'start') metrics.sessionsOpened.inc();
    if (change.kind === 'retract') metrics.sessionsMerged.inc();
    if (change.write?.is_open === 0 && change.cancel?.is_open !== 0) metrics.sessionsClosed.inc();
  }
}

/**
 * Per session of one user, the row that should stand after a repair: the state's written row
 * while it holds the session; else the last row written while repairing (null: retracted);
 * else the row it held when the repair began (forgotten since, unchanged). A stored session in
 * reach that is none of these was written by the lost commits only: none should stand.
 */
function wantedRows(
  state: KeyState | undefined,
  base: ReadonlyMap<string, SessionRow> = new Map(),
  writes: ReadonlyMap<string, SessionRow | null> = new Map(),
): Map<string, SessionRow | null> {
  const wanted = new Map<string, SessionRow | null>(base);
  for (const [sessionId, row] of writes) wanted.set(sessionId, row);
  for (const session of state?.sessions ?? []) if (session.written) wanted.set(session.written.session_id, session.written);
  return wanted;
}

/** Each user's written rows, copied: the engine replaces or changes them as it goes. */
function writtenRowsOf(states: ReadonlyMap<string, KeyState>): Map<string, SessionRow[]> {
  const rows = new Map<string, SessionRow[]>();
  for (const [userKey, state] of states) rows.set(userKey, state.sessions.flatMap((s) => (s.written ? [{ ...s.written }] : [])));
  return rows;
}
