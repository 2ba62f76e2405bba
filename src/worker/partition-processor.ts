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
import type { Logger } from 'pino';
import { applyEvent, newKeyState, nextDeadlines, reconcile, type EngineConfig, type SessionChange } from '../engine/engine';
import { CommitAlreadyAppliedError } from '../errors';
import type { EventFields } from '../events/session-event';
import type { WorkerMetrics } from '../observability/metrics';
import type { EventRow, EventSource } from '../clickhouse/event-row';
import { sessionValues, signedRows, type SessionValues } from '../clickhouse/session-sink';
import type { PartitionStateStore, UserUpdate } from '../state/partition-state-store';
import { planBatch, type IncomingMessage, type PlannedEvent, type RejectedMessage } from './batch-plan';
import { withRetry, type RetryHooks } from './retry';

export interface SessionSinkPort {
  insertSessions(rows: readonly SessionValues[], deduplicationToken: string): Promise<void>;
  eventBatch(withSource: true, messageBytes: number): EventBatchPort;
  insertEventBatch(batch: EventBatchPort, deduplicationToken: string): Promise<void>;
}

/** `events` rows collected (encoded) as a batch is planned. */
export interface EventBatchPort {
  add(row: EventRow): void;
  readonly count: number;
}

export interface DeadLetterPort {
  publish(topic: string, partition: number, rejected: readonly RejectedMessage[]): Promise<void>;
}

export interface ProcessorDeps {
  store: PartitionStateStore;
  sink: SessionSinkPort;
  deadLetter: DeadLetterPort;
  eventRow: (fields: EventFields, ts: number, raw: string, source: EventSource) => EventRow;
  engine: EngineConfig;
  closeDelayMs: number;
  maxClockSkewMs: number;
  now: () => number;
  metrics: WorkerMetrics;
  log: Logger;
  /** Users whose deadlines are processed per batch or tick, at most (the rest wait for the next). */
  maxDueUsers?: number;
}

const DEFAULT_MAX_DUE_USERS = 5_000;

export class PartitionProcessor {
  private epoch = '';
  private rev = 0;
  private appliedOffset = '-1';
  private watermark = -Infinity;
  private caughtUp = false;
  /** Serialises batches and ticks: both change this partition's state. */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The last commit's session rows on their way to ClickHouse, while the next batch is read and
   * worked on. They are durable already (the commit put them in the Redis outbox, which whoever
   * claims the partition next flushes), so the batch's Kafka offset need not wait for them. At
   * most one is in flight: the next commit waits for it (`settleFlush`), so outbox entries land
   * in order and a failing ClickHouse still stops consumption.
   */
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly deps: ProcessorDeps,
  ) {}

  /** Takes the partition over: bumps its epoch and flushes any outbox entry a crash left behind. */
  async claim(hooks: RetryHooks = {}): Promise<void> {
    const claim = await withRetry('claim partition', () => this.deps.store.claim(), hooks);
    this.epoch = claim.epoch;
    this.rev = claim.rev;
    this.appliedOffset = claim.offset;
    this.watermark = claim.watermark ?? -Infinity;
    await this.flushPendingOutbox(hooks);
    this.deps.log.info({ topic: this.topic, partition: this.partition, epoch: this.epoch, offset: this.appliedOffset }, 'partition claimed');
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
      if (!this.caughtUp || !this.epoch || !Number.isFinite(this.watermark)) return;
      await this.advance(new Map(), this.appliedOffset, hooks);
    });
  }

  /** Waits for the session rows in flight (shutdown); a failure was logged when it happened. */
  drain(): Promise<void> {
    return this.flushing.catch(() => undefined);
  }

  private serialised(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async processBatch(messages: readonly IncomingMessage[], highWatermark: string, hooks: RetryHooks): Promise<void> {
    const started = this.deps.now();
    const applied = BigInt(this.appliedOffset);
    const fresh = messages.filter((m) => BigInt(m.offset) > applied);
    const last = messages[messages.length - 1];
    if (last) this.caughtUp = BigInt(highWatermark) - 1n <= BigInt(last.offset);
    if (fresh.length === 0) return;
    const firstOffset = (fresh[0] as IncomingMessage).offset;
    const lastOffset = (fresh[fresh.length - 1] as IncomingMessage).offset;
    const { metrics } = this.deps;
    metrics.eventsConsumed.inc(fresh.length);
    metrics.batchSize.observe(fresh.length);
    metrics.consumerLag.set({ topic: this.topic, partition: String(this.partition) }, Number(BigInt(highWatermark) - 1n - BigInt(lastOffset)));

    const { topic, partition } = this;
    let messageBytes = 0;
    for (const m of fresh) messageBytes += m.value?.length ?? 0;
    const eventRows = this.deps.sink.eventBatch(true, messageBytes);
    const plan = planBatch(fresh, this.watermark, started + this.deps.maxClockSkewMs, (fields, ts, raw, offset) =>
      eventRows.add(this.deps.eventRow(fields, ts, raw, { topic, partition, offset, receivedAtMs: started })),
    );
    if (plan.rejected.length > 0) {
      await withRetry('dead-letter', () => this.deps.deadLetter.publish(this.topic, this.partition, plan.rejected), hooks);
      for (const r of plan.rejected) metrics.eventsInvalid.inc({ reason: r.error.field || 'message' });
    }
    // The events insert runs while the engine works on the batch; the state commit waits for
    // it, because a committed offset makes a redelivery skip these messages, so their rows must
    // be in `events` first.
    const eventsWritten =
      eventRows.count > 0
        ? this.timedInsert(() => this.deps.sink.insertEventBatch(eventRows, `${topic}:${partition}:${firstOffset}-${lastOffset}:events`), hooks).then(() =>
            metrics.eventsValid.inc(eventRows.count),
          )
        : Promise.resolve();
    // Awaited below; this only keeps a failure from being reported as unhandled when the engine
    // step fails first.
    eventsWritten.catch(() => undefined);
    await this.advance(plan.byUser, lastOffset, hooks, plan.watermark, eventsWritten);
    await eventsWritten;
    metrics.batchSeconds.observe((this.deps.now() - started) / 1000);
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
  ): Promise<void> {
    const { store, engine, metrics } = this.deps;
    const closeBound = this.caughtUp ? this.deps.now() - this.deps.closeDelayMs : -Infinity;
    const due = await withRetry('load deadlines', () => store.dueUsers(Math.max(watermark, closeBound), watermark, this.deps.maxDueUsers ?? DEFAULT_MAX_DUE_USERS), hooks);
    const users = new Set([...byUser.keys(), ...due]);
    if (users.size === 0 && toOffset === this.appliedOffset) return;

    const states = await withRetry('load states', () => store.loadStates([...users]), hooks);
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
    await beforeCommit;
    await this.settleFlush(hooks);
    const commitStarted = this.deps.now();
    const seq = await this.commit(toOffset, watermark, rows, updates, hooks);
    metrics.redisScriptSeconds.observe((this.deps.now() - commitStarted) / 1000);
    this.appliedOffset = toOffset;
    this.watermark = watermark;
    countChanges(changes, metrics);
    if (seq > 0) this.flushInBackground(seq, rows, hooks);
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

  private flushInBackground(seq: number, rows: SessionValues[], hooks: RetryHooks): void {
    const flush = this.flushOutboxEntry(seq, rows, hooks);
    // If it fails, the outbox keeps the rows and the next commit sends them again
    // (`settleFlush`); this only reports the failure, also when no next commit comes.
    flush.catch((err: unknown) =>
      this.deps.log.warn({ err, topic: this.topic, partition: this.partition, seq }, 'session rows not written yet; they stay in the outbox'),
    );
    this.flushing = flush;
  }

  private async commit(toOffset: string, watermark: number, rows: SessionValues[], updates: UserUpdate[], hooks: RetryHooks): Promise<number> {
    const params = {
      epoch: this.epoch,
      rev: this.rev,
      offset: toOffset,
      watermark,
      payload: rows.length > 0 ? JSON.stringify(rows) : '',
      updates,
    };
    try {
      const seq = await withRetry('commit state', () => this.deps.store.commit(params), hooks);
      this.rev += 1;
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
      await this.flushOutboxEntry(entry.seq, JSON.parse(entry.payload) as SessionValues[], hooks);
    }
  }

  private async flushOutboxEntry(seq: number, rows: SessionValues[], hooks: RetryHooks): Promise<void> {
    await this.timedInsert(() => this.deps.sink.insertSessions(rows, `${this.topic}:${this.partition}:outbox:${seq}`), hooks);
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

function countChanges(changes: readonly SessionChange[], metrics: WorkerMetrics): void {
  for (const change of changes) {
    if (change.kind === 'start') metrics.sessionsOpened.inc();
    if (change.kind === 'retract') metrics.sessionsMerged.inc();
    if (change.write?.is_open === 0 && change.cancel?.is_open !== 0) metrics.sessionsClosed.inc();
  }
}
