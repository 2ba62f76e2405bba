/**
 * Historical recalculation into ClickHouse (`sessionizer recompute --since D --sink clickhouse`,
 * docs/recalculation.md): every user key with an event at or after D is recomputed from the
 * `events` table with the engine the worker runs, and only the difference is written to
 * `sessions`. Keys go in pages (`pageUsers`), so memory stays bounded whatever the history.
 *
 * For one page of keys, in this order:
 *   1. Redis: where the worker keeps each key's state (and what it says), and each partition's
 *      watermark; then every outbox entry the worker committed but may not have written to
 *      ClickHouse yet is written now, with the worker's own deduplication token, so the sessions
 *      read next are at least as new as the states just read.
 *   2. ClickHouse: each key's start point (the session open at D, rebuilt whole), the sessions
 *      before it (numbering seed), the sessions after it, and the events after it.
 *   3. Per key (user-recalc.ts): engine, cut where the worker's part begins, diff (diff.ts).
 *   4. The diff rows go to `sessions` with a token made of their hash: an interrupted and rerun
 *      page that computes the same rows cannot add them twice.
 *   5. The worker's counters (`c`/`l`) are set to what recalculation found, compare-and-set
 *      against the state read in step 1. A key whose state changed meanwhile is done again.
 *
 * Rerunning changes nothing: the second run computes the same sessions, finds them standing,
 * and finds the counters already right (so it does not fence the worker either).
 */
import { createHash } from 'node:crypto';
import { outboxBody, sessionValues, type SessionValues, type SignedSessionRow } from '../clickhouse/session-sink';
import { describeError } from '../clickhouse/external-data';
import { ClickHouseQueryError } from '../errors';
import { compareSameUser } from '../recompute/event-order';
import {
  partitionId,
  type CounterUpdate,
  type FoundState,
  type StatePartition,
  type UserCounterStore,
} from '../state/user-counters';
import type { ClickHouseSource, UserEvents } from './clickhouse-source';
import type { KeyShard } from './key-shard';
import { recalculateUser } from './user-recalc';
import type { SessionEvent } from '../events/session-event';
import { siteOfKey } from '../events/visitor-key';

export interface RecalculationOptions {
  /** D, epoch ms: keys with an event at or after it are recalculated, from their session open at D. */
  sinceMs: number;
  /** T, as the worker's SESSION_TIMEOUT_MINUTES (a changed T applies from D on). */
  timeoutMs: number;
  /** The worker's allowed lateness: with T, it bounds which sessions the worker may still change. */
  latenessMs: number;
  /** Only the user keys of this shard (`--shard I/N`); all keys when absent. */
  shard?: KeyShard;
  /**
   * Only this site's keys (`--site`): nothing of another site is read or written. All sites when
   * absent (each key still recalculated within its own site).
   */
  site?: string;
  /** User keys per page. Default 500: one page's sessions and counters are held in memory. */
  pageUsers?: number;
  /**
   * Only these keys (a backfill's: visitor keys, src/events/visitor-key.ts), instead of every
   * key with an event since D; each is recalculated from its session open at D as usual. Any
   * order; duplicates are ignored; with `site`, those of other sites too.
   */
  userKeys?: Iterable<string>;
  /** Session rows per insert: a page's rows are written once this many are pending (whole users). Default 20 000. */
  insertRows?: number;
  /** Attempts for a key whose worker state keeps changing under us. Default 5. */
  maxAttempts?: number;
  /** Stops after the page in progress (everything written so far is consistent). */
  signal?: AbortSignal;
  /** The number of keys to do, once known. */
  onStart?: (totalUsers: number) => void;
  /** Keys done so far, after each page. */
  onProgress?: (doneUsers: number) => void;
  /** Something the operator should know (the run goes on). */
  onWarning?: (message: string) => void;
}

export interface RecalculationStats {
  totalUsers: number;
  users: number;
  events: number;
  /** Stored events that made no valid event (skipped). */
  invalidEvents: number;
  /** Sessions recalculation found in the recalculated ranges. */
  sessions: number;
  unchanged: number;
  changed: number;
  added: number;
  vanished: number;
  /** Rows inserted into `sessions` (cancel and new). */
  rowsWritten: number;
  /** Worker states whose counters were set (created, for a key whose state had expired). */
  countersAdjusted: number;
  /** Keys whose recalculated range stopped where the live worker's part begins. */
  leftToWorker: number;
  /**
   * Of those, the keys whose part left to the worker holds stored events the worker never
   * applied (too late for it, or written straight to `events`): the worker cannot finish them.
   */
  unfinished: UnfinishedUsers;
  /** Worker outbox entries written to ClickHouse on its behalf (deduplicated with the worker's). */
  outboxFlushed: number;
  /** Keys done again because the worker changed their state meanwhile. */
  retried: number;
  /** Keys streamed from a partition without worker state under our prefix: their streamed part was left alone. */
  unknownPartition: number;
  /** Keys whose state kept changing for every attempt: run again later. */
  unsettled: string[];
  interrupted: boolean;
}

/** Users left to the worker that it cannot finish, and when a rerun will. */
export interface UnfinishedUsers {
  users: number;
  /** A few of their keys, for the report. */
  examples: string[];
  /** Earliest and latest time of an event the worker never applied (NaN when none). */
  firstEventMs: number;
  lastEventMs: number;
  /**
   * Event time the partitions' watermarks must pass before a rerun from `firstEventMs` finishes
   * them: the worker forgets a session once the watermark is T + allowed lateness past its end
   * (the end of the latest such event's session as far as known now; should the user stay
   * active, the rerun reports what is still left).
   */
  rerunAfterMs: number;
}

export interface RecalculationDeps {
  source: ClickHouseSource;
  /** `sessions` inserts (ClickHouseSink): rows as `SESSION_COLUMNS` arrays, with a deduplication token. */
  sink: { insertSessions(rows: readonly SessionValues[] | Buffer, deduplicationToken: string): Promise<void> };
  counters: UserCounterStore;
}

const DEFAULT_PAGE_USERS = 500;
const DEFAULT_INSERT_ROWS = 20_000;
const DEFAULT_MAX_ATTEMPTS = 5;

export async function recalculate(deps: RecalculationDeps, options: RecalculationOptions): Promise<RecalculationStats> {
  const run = new Recalculation(deps, options);
  return run.run();
}

class Recalculation {
  readonly stats: RecalculationStats = {
    totalUsers: 0,
    users: 0,
    events: 0,
    invalidEvents: 0,
    sessions: 0,
    unchanged: 0,
    changed: 0,
    added: 0,
    vanished: 0,
    rowsWritten: 0,
    countersAdjusted: 0,
    leftToWorker: 0,
    unfinished: { users: 0, examples: [], firstEventMs: NaN, lastEventMs: NaN, rerunAfterMs: NaN },
    outboxFlushed: 0,
    unknownPartition: 0,
    retried: 0,
    unsettled: [],
    interrupted: false,
  };
  private readonly pageUsers: number;
  private readonly insertRows: number;
  private readonly maxAttempts: number;
  private partitions = new Map<string, StatePartition>();

  constructor(
    private readonly deps: RecalculationDeps,
    private readonly options: RecalculationOptions,
  ) {
    this.pageUsers = options.pageUsers ?? DEFAULT_PAGE_USERS;
    this.insertRows = options.insertRows ?? DEFAULT_INSERT_ROWS;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  }

  async run(): Promise<RecalculationStats> {
    const { source, counters } = this.deps;
    const { sinceMs, signal } = this.options;
    for (const p of await counters.partitions()) this.partitions.set(partitionId(p.topic, p.partition), p);
    const { shard, site } = this.options;
    const given = this.options.userKeys ? [...new Set(this.options.userKeys)].filter((k) => site === undefined || siteOfKey(k) === site).sort() : null;
    this.stats.totalUsers = given ? given.length : await source.countUsers(sinceMs, shard, site);
    this.options.onStart?.(this.stats.totalUsers);

    let after = '';
    for (let page = 0; ; page++) {
      if (signal?.aborted) {
        this.stats.interrupted = true;
        break;
      }
      const keys = given ? given.slice(page * this.pageUsers, (page + 1) * this.pageUsers) : await source.userPage(sinceMs, after, this.pageUsers, shard, site);
      if (keys.length === 0) break;
      after = keys[keys.length - 1] as string;

      let pending = await this.processUsers(keys);
      for (let attempt = 2; pending.length > 0 && attempt <= this.maxAttempts && !signal?.aborted; attempt++) {
        this.stats.retried += pending.length;
        await sleep(100 * attempt);
        pending = await this.processUsers(pending);
      }
      if (pending.length > 0) {
        this.stats.unsettled.push(...pending);
        this.options.onWarning?.(`${pending.length} user keys changed in the worker's state on every attempt (e.g. ${pending[0]}); run again`);
      }
      this.stats.users += keys.length;
      this.options.onProgress?.(this.stats.users);
    }
    if (this.stats.unknownPartition > 0) {
      this.options.onWarning?.(
        `${this.stats.unknownPartition} user keys came from Kafka partitions with no worker state under this REDIS_KEY_PREFIX ` +
          'and KAFKA_TOPICS: their streamed sessions were left alone (check the configuration)',
      );
    }
    return this.stats;
  }

  /** Steps 1–5 for some keys; returns the keys whose worker state changed before we could set it. */
  private async processUsers(keys: readonly string[]): Promise<string[]> {
    const { source, counters } = this.deps;
    const { sinceMs, timeoutMs } = this.options;

    const located = await counters.locate(keys);
    const watermarks = await counters.watermarks();
    for (const entry of await counters.pendingOutbox()) {
      await this.insert(outboxBody(entry.payload), entry.token, `writing a pending outbox entry of the worker (token ${entry.token})`);
      this.stats.outboxFlushed += 1;
    }

    const starts = await source.startPoints(keys, sinceMs, timeoutMs);
    const seeds = await source.seeds(starts);
    const current = await source.currentRows(starts);
    const versions = await source.maxVersions(starts);

    const buffer: SignedSessionRow[] = [];
    const updates = new Map<string, { partition: StatePartition; list: CounterUpdate[] }>();
    const done = new Set<string>();
    const handle = (userKey: string, stored: UserEvents | null) => {
      done.add(userKey);
      const found = this.chooseState(userKey, located.get(userKey) ?? []);
      const retained = found?.state.sessions[0];
      const partition = found?.partition ?? this.partitionOf(stored?.streamedFrom ?? null);
      const events = stored?.events ?? [];
      events.sort(compareSameUser);
      this.stats.events += events.length;
      this.stats.invalidEvents += stored?.invalid ?? 0;

      const result = recalculateUser(
        {
          userKey,
          from: starts.get(userKey) as number,
          seed: seeds.get(userKey) ?? { count: 0, lastId: '' },
          events,
          current: current.get(userKey) ?? [],
          maxVersions: versions,
          retainedFrom: retained ? retained.summary.startTs : Infinity,
          workerHorizon: this.horizonOf(found, stored, watermarks),
        },
        { timeoutMs },
      );
      buffer.push(...result.rows);
      this.stats.sessions += result.recomputed;
      this.stats.unchanged += result.unchanged;
      this.stats.changed += result.changed;
      this.stats.added += result.added;
      this.stats.vanished += result.vanished;
      if (Number.isFinite(result.cut)) {
        this.stats.leftToWorker += 1;
        this.noteUnfinished(userKey, events, result.cut, found);
      }

      const wanted = result.counters;
      if (!wanted || !partition) return;
      if (found && found.state.forgottenCount === wanted.count && found.state.forgottenLastId === wanted.lastId) return;
      if (!found && wanted.count === 0) return;
      const group = updates.get(partitionId(partition.topic, partition.partition)) ?? { partition, list: [] };
      group.list.push({ userKey, expected: found?.stored ?? null, count: wanted.count, lastId: wanted.lastId, due: retained !== undefined });
      updates.set(partitionId(partition.topic, partition.partition), group);
    };

    for await (const stored of source.events(starts)) {
      if (!starts.has(stored.userKey)) continue;
      handle(stored.userKey, stored);
      if (buffer.length >= this.insertRows) await this.write(buffer.splice(0));
    }
    // A key whose events are gone (none from its start point on): its sessions there vanish.
    for (const userKey of keys) if (!done.has(userKey)) handle(userKey, null);
    await this.write(buffer.splice(0));

    const conflicts: string[] = [];
    for (const { partition, list } of updates.values()) {
      const changed = await counters.adjust(partition, list);
      this.stats.countersAdjusted += list.length - changed.length;
      conflicts.push(...changed);
    }
    return conflicts;
  }

  /**
   * One insert, with a token made of its content. Called between users only, so a session's
   * cancel and new row always go together (and land in one part: they share `started_at`).
   */
  private async write(rows: SignedSessionRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values = rows.map(sessionValues);
    const token = `recalc:${createHash('sha256').update(JSON.stringify(values)).digest('hex')}`;
    await this.insert(values, token, `writing ${rows.length} session rows (user keys ${rows[0]?.user_key} … ${rows[rows.length - 1]?.user_key})`);
    this.stats.rowsWritten += rows.length;
  }

  /** An insert into `sessions` whose failure says what was being written and why. */
  private async insert(values: SessionValues[] | Buffer, token: string, doing: string): Promise<void> {
    try {
      await this.deps.sink.insertSessions(values, token);
    } catch (err) {
      throw err instanceof ClickHouseQueryError ? err : new ClickHouseQueryError(doing, describeError(err), { cause: err });
    }
  }

  /**
   * A key left to the worker from `cut` on: the worker finishes its part only if it holds every
   * stored event there (its state keeps the ids of the events of the sessions it holds). One it
   * does not hold — rejected as late, or written to `events` without passing through Kafka — it
   * will never apply; only a later recalculation, after the worker has forgotten those sessions,
   * can. Such keys are counted, with when to rerun.
   */
  private noteUnfinished(userKey: string, events: readonly SessionEvent[], cut: number, found: FoundState | null): void {
    let first = Infinity;
    let last = -Infinity;
    for (const event of events) {
      if (event.ts < cut || found?.state.seen.has(event.eventId)) continue;
      first = Math.min(first, event.ts);
      last = Math.max(last, event.ts);
    }
    if (!Number.isFinite(first)) return;
    // The session holding the latest such event ends at it or at the end of what the worker holds.
    const held = found?.state.sessions;
    const end = Math.max(last, held && held.length > 0 ? (held[held.length - 1] as (typeof held)[number]).summary.endTs : -Infinity);
    const unfinished = this.stats.unfinished;
    unfinished.users += 1;
    if (unfinished.examples.length < 5) unfinished.examples.push(userKey);
    unfinished.firstEventMs = Number.isNaN(unfinished.firstEventMs) ? first : Math.min(unfinished.firstEventMs, first);
    unfinished.lastEventMs = Number.isNaN(unfinished.lastEventMs) ? last : Math.max(unfinished.lastEventMs, last);
    const after = end + this.options.timeoutMs + this.options.latenessMs;
    unfinished.rerunAfterMs = Number.isNaN(unfinished.rerunAfterMs) ? after : Math.max(unfinished.rerunAfterMs, after);
  }

  /** The state the worker numbers this key by: the one holding sessions if several partitions have one. */
  private chooseState(userKey: string, states: readonly FoundState[]): FoundState | null {
    if (states.length > 1) {
      this.options.onWarning?.(
        `user key ${userKey} has state in ${states.length} partitions (${states.map((s) => partitionId(s.partition.topic, s.partition.partition)).join(', ')}); using one`,
      );
    }
    return states.find((s) => s.state.sessions.length > 0) ?? states[0] ?? null;
  }

  private partitionOf(streamedFrom: UserEvents['streamedFrom']): StatePartition | null {
    if (!streamedFrom) return null;
    return this.partitions.get(partitionId(streamedFrom.topic, streamedFrom.partition)) ?? null;
  }

  /**
   * Sessions ending after this may still be reached by an event the worker accepts (one
   * no more than the allowed lateness behind the watermark): they are the worker's. Infinity for
   * a key the worker never saw; -Infinity when it did but its partition has no watermark yet.
   */
  private horizonOf(found: FoundState | null, stored: UserEvents | null, watermarks: ReadonlyMap<string, number | null>): number {
    const partition = found?.partition ?? this.partitionOf(stored?.streamedFrom ?? null);
    if (!partition) {
      if (!stored?.streamedFrom) return Infinity;
      // Streamed, but from a partition with no state under our prefix: a wrong REDIS_KEY_PREFIX
      // or KAFKA_TOPICS, or a partition the worker has not claimed. Leave the key alone.
      this.stats.unknownPartition += 1;
      return -Infinity;
    }
    const watermark = watermarks.get(partitionId(partition.topic, partition.partition));
    if (watermark == null) return -Infinity;
    return watermark - this.options.latenessMs - this.options.timeoutMs;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
