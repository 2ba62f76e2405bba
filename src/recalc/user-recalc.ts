/**
 * Recalculation of one user key from a clean start point, with the same engine the worker and
 * `recompute` run. Pure: the caller reads ClickHouse and Redis, this decides what to write.
 *
 * Input: the key's events from `from` on, in recompute's order; the sessions of the key that
 * stand in ClickHouse from `from` on; how many sessions came before `from` and the id of the
 * last one (`seed`), so numbering continues; and where the live worker's part begins.
 *
 * The worker's part is left alone. It starts at the earlier of
 *   - `retainedFrom`: the start of the first session the worker still holds in Redis (it may
 *     still change it, and it will renumber it itself from the counters we give it), and
 *   - the first recomputed session that ends after `workerHorizon` (the partition's watermark
 *     minus the allowed lateness minus T): an event the worker may still accept could reach it
 *     (the worker forgets exactly the sessions ending at or before it), and the worker would not
 *     know the session to merge into.
 * That point moves earlier while a current or recomputed session straddles it, so the split
 * never cuts a session in two. Sessions before it are recomputed and diffed against ClickHouse;
 * `counters` are what the worker's state must say about the sessions before `retainedFrom`.
 */
import { applyEvent, newKeyState, reconcile, type EngineConfig } from '../engine/engine';
import type { SessionRow } from '../engine/session-row';
import type { SessionEvent } from '../events/session-event';
import { diffSessions, type SessionDiff } from './diff';

export interface UserRecalcInput {
  userKey: string;
  /** Epoch ms: a clean boundary (no session of the key spans it, no event lies within T before it). */
  from: number;
  /** Current sessions of the key that started before `from`: how many, and the last one's id. */
  seed: { count: number; lastId: string };
  /** Events of the key with `ts >= from`, in recompute's order `(ts, event_id, content)`. */
  events: readonly SessionEvent[];
  /** Current rows (`FINAL WHERE sign = 1`) of the key that started at or after `from`. */
  current: readonly SessionRow[];
  /** Highest version each session id of the key ever had (cancelled rows included). */
  maxVersions: ReadonlyMap<string, number>;
  /** Start of the first session the worker holds in Redis; Infinity when it holds none. */
  retainedFrom: number;
  /** Sessions ending after this are within the worker's reach; Infinity for a key never streamed. */
  workerHorizon: number;
}

export interface UserRecalcResult extends SessionDiff {
  /** Epoch ms where the worker's part begins (Infinity when all of it was recalculated). */
  cut: number;
  /** Sessions recalculation wants before `cut`. */
  recomputed: number;
  /**
   * The key's sessions before `retainedFrom` after this change: what the worker's `c`/`l` must
   * be. Null when the worker's sessions begin at or before `from` (the whole range is its own).
   */
  counters: { count: number; lastId: string } | null;
  /** Events that were run through the engine (duplicates included). */
  events: number;
}

export function recalculateUser(input: UserRecalcInput, engine: Pick<EngineConfig, 'timeoutMs'>): UserRecalcResult {
  if (input.retainedFrom <= input.from) {
    return { rows: [], unchanged: 0, changed: 0, added: 0, vanished: 0, cut: input.retainedFrom, recomputed: 0, counters: null, events: 0 };
  }
  const config: EngineConfig = { timeoutMs: engine.timeoutMs, latenessMs: Infinity };
  const state = newKeyState(input.userKey);
  state.forgottenCount = input.seed.count;
  state.forgottenLastId = input.seed.lastId;
  let applied = 0;
  for (const event of input.events) {
    if (event.ts >= input.retainedFrom) break;
    applyEvent(state, event, config, event.ts);
    applied += 1;
  }
  const wanted: SessionRow[] = [];
  for (const change of reconcile(state, config, Infinity)) if (change.write) wanted.push(change.write);

  const current = [...input.current].sort((a, b) => startOf(a) - startOf(b));
  let cut = input.retainedFrom;
  for (const row of wanted) {
    if (endOf(row) > input.workerHorizon) {
      cut = Math.min(cut, startOf(row));
      break;
    }
  }
  for (let moved = true; moved; ) {
    moved = false;
    for (const row of [...current, ...wanted]) {
      if (startOf(row) < cut && endOf(row) >= cut) {
        cut = startOf(row);
        moved = true;
      }
    }
  }

  const kept = wanted.filter((row) => startOf(row) < cut);
  const diff = diffSessions(
    current.filter((row) => startOf(row) < cut),
    kept,
    input.maxVersions,
  );

  // What precedes the worker's sessions: the seed, the recomputed sessions, and any current
  // rows between the cut and the worker's first session (none unless a straddle moved the cut).
  let count = input.seed.count + kept.length;
  let lastId = kept.length > 0 ? (kept[kept.length - 1] as SessionRow).session_id : input.seed.lastId;
  for (const row of current) {
    const start = startOf(row);
    if (start >= cut && start < input.retainedFrom) {
      count += 1;
      lastId = row.session_id;
    }
  }
  return { ...diff, cut, recomputed: kept.length, counters: { count, lastId }, events: applied };
}

function startOf(row: SessionRow): number {
  return Date.parse(row.started_at);
}

function endOf(row: SessionRow): number {
  return Date.parse(row.ended_at);
}
