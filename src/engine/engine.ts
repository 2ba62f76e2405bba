/**
 * The session engine: a state machine over one user key's state. No I/O, no clock reads —
 * time comes in as an event-time watermark — so the worker (state in Redis) and `recompute`
 * (state in memory) run exactly this code, and their results cannot drift.
 *
 * The functions take ownership of the `KeyState` they are given and change it in place: it is
 * a value loaded for one batch (from Redis or a map) and saved afterwards, and copying it per
 * event would cost more than the rules themselves.
 *
 * Lifecycle of a session in the state:
 *   applyEvent  adds an event: joins the session within T of it, starts a new one, or merges the
 *               two it bridges (the later one's written row is queued for retraction);
 *   reconcile   turns the state into output: for each session the row it should have now
 *               (numbered, open while `end + T > watermark`), compared with the row last written,
 *               and emits the difference; then forgets sessions no accepted event can reach.
 */
import type { SessionEvent } from '../events/session-event';
import { sameContent, sessionRowOf, type SessionRow } from './session-row';
import { mergeEvent, mergeSummary, summaryOf, type SessionSummary } from './summary';

export interface EngineConfig {
  /** T: a gap of at least this much event time starts a new session. */
  timeoutMs: number;
  /**
   * How far behind the watermark an event may be and still be applied. `Infinity` for
   * recalculation, which has all the data: nothing is late and nothing is ever forgotten.
   */
  latenessMs: number;
}

export interface TrackedSession {
  summary: SessionSummary;
  /** The row standing in the output for this session; null before its first reconcile. */
  written: SessionRow | null;
}

export interface KeyState {
  userKey: string;
  /** Sessions that can still change, ordered by start; consecutive ones are ≥ T apart. */
  sessions: TrackedSession[];
  /** Event ids of the events in `sessions`, with their time (to forget them with their session). */
  seen: Map<string, number>;
  /** How many sessions of this key came before `sessions[0]` and were forgotten. */
  forgottenCount: number;
  /** `session_id` of the last forgotten session, "" when there is none. */
  forgottenLastId: string;
  /** Rows written for sessions that merged into another; cancelled by the next reconcile. */
  retracted: SessionRow[];
}

export type ApplyOutcome = 'applied' | 'duplicate' | 'late';

/** One change to the output: a cancel of a written row, a new row, or both. */
export interface SessionChange {
  kind: 'start' | 'update' | 'end' | 'retract';
  cancel?: SessionRow;
  write?: SessionRow;
}

export function newKeyState(userKey: string): KeyState {
  return { userKey, sessions: [], seen: new Map(), forgottenCount: 0, forgottenLastId: '', retracted: [] };
}

/**
 * Applies one event of this key. `watermarkMs` is the event-time watermark when the event
 * arrived; an event more than the allowed lateness behind it is not applied ('late') and the
 * caller keeps it for the next recalculation.
 */
export function applyEvent(state: KeyState, event: SessionEvent, config: EngineConfig, watermarkMs: number): ApplyOutcome {
  if (state.seen.has(event.eventId)) return 'duplicate';
  if (watermarkMs - event.ts > config.latenessMs) return 'late';
  state.seen.set(event.eventId, event.ts);

  const sessions = state.sessions;
  const T = config.timeoutMs;
  // Scan from the newest session: in-order traffic touches the last one, so this is O(1).
  let firstTouched = -1;
  let lastTouched = -1;
  let insertAt = sessions.length;
  for (let i = sessions.length - 1; i >= 0; i--) {
    const s = (sessions[i] as TrackedSession).summary;
    if (event.ts >= s.endTs + T) break; // after this one by ≥ T, so after all earlier ones too
    if (event.ts > s.startTs - T) {
      firstTouched = i;
      if (lastTouched < 0) lastTouched = i;
    } else {
      insertAt = i;
    }
  }

  if (firstTouched < 0) {
    sessions.splice(insertAt, 0, { summary: summaryOf(event), written: null });
    return 'applied';
  }
  const target = sessions[firstTouched] as TrackedSession;
  mergeEvent(target.summary, event); // = mergeSummary(target.summary, summaryOf(event))
  // The event bridges sessions: fold the later ones into the first and retract their rows.
  for (let i = firstTouched + 1; i <= lastTouched; i++) {
    const bridged = sessions[i] as TrackedSession;
    mergeSummary(target.summary, bridged.summary);
    if (bridged.written) state.retracted.push(bridged.written);
  }
  if (lastTouched > firstTouched) sessions.splice(firstTouched + 1, lastTouched - firstTouched);
  return 'applied';
}

/**
 * Brings the output up to date with the state at `watermarkMs` and returns the changes, then
 * forgets sessions that no accepted event can reach any more. Calling it again with the same
 * watermark returns nothing.
 *
 * `closeBoundMs` lets a caller close sessions earlier than the event-time watermark would: the
 * live worker passes wall-clock time when it has caught up, so a session ends T after its last
 * event even when no later event arrives. It only closes; lateness and forgetting stay on event
 * time, so a replay of old data is never judged by today's clock.
 */
export function reconcile(
  state: KeyState,
  config: EngineConfig,
  watermarkMs: number,
  closeBoundMs: number = -Infinity,
): SessionChange[] {
  const closeAt = Math.max(watermarkMs, closeBoundMs);
  const changes: SessionChange[] = state.retracted.map((row) => ({ kind: 'retract', cancel: row }));
  state.retracted = [];

  let previousId = state.forgottenLastId;
  let sessionNumber = state.forgottenCount;
  for (const session of state.sessions) {
    sessionNumber += 1;
    const isOpen: 0 | 1 = session.summary.endTs + config.timeoutMs > closeAt ? 1 : 0;
    // The row this session should have (as version 1; an update below renumbers it). Built as
    // one literal: `{ ...record, is_open, version }` made slow dictionary-mode objects.
    const row = sessionRowOf(state.userKey, session.summary, sessionNumber, previousId, isOpen, 1);
    const written = session.written;
    previousId = row.session_id;
    if (written && sameContent(written, row)) continue;

    if (!written) {
      changes.push({ kind: 'start', write: row });
      session.written = row;
    } else if (written.session_id !== row.session_id) {
      // An earlier event moved the start, and with it the id: a different row altogether.
      changes.push({ kind: 'retract', cancel: written }, { kind: 'start', write: row });
      session.written = row;
    } else {
      row.version = written.version + 1;
      const kind = written.is_open === 1 && isOpen === 0 ? 'end' : 'update';
      changes.push({ kind, cancel: written, write: row });
      session.written = row;
    }
  }
  forgetUnreachable(state, config, watermarkMs);
  return changes;
}

/**
 * An accepted event is at most `latenessMs` behind the watermark, so it cannot touch a session
 * that ended `T + latenessMs` or more before the watermark. Those sessions are final: drop them
 * and their event ids, keeping only the count and the last id for numbering what follows.
 */
function forgetUnreachable(state: KeyState, config: EngineConfig, watermarkMs: number): void {
  if (!Number.isFinite(config.latenessMs)) return;
  const horizon = watermarkMs - config.latenessMs - config.timeoutMs;
  let dropped = 0;
  let lastDroppedEnd = -Infinity;
  for (const session of state.sessions) {
    if (session.summary.endTs > horizon || !session.written) break;
    state.forgottenCount += 1;
    state.forgottenLastId = session.written.session_id;
    lastDroppedEnd = session.summary.endTs;
    dropped += 1;
  }
  if (dropped === 0) return;
  state.sessions.splice(0, dropped);
  for (const [eventId, ts] of state.seen) if (ts <= lastDroppedEnd) state.seen.delete(eventId);
}

/**
 * When `reconcile` would next change something without any new event: `closeAt`, the earliest
 * time an open session closes (compared with the close bound or the watermark), and `forgetAt`,
 * the event-time watermark at which the oldest session can be forgotten. Null when not pending.
 */
export function nextDeadlines(state: KeyState, config: EngineConfig): { closeAt: number | null; forgetAt: number | null } {
  let closeAt: number | null = null;
  for (const session of state.sessions) {
    if (session.written?.is_open === 1) {
      const at = session.summary.endTs + config.timeoutMs;
      if (closeAt === null || at < closeAt) closeAt = at;
    }
  }
  const oldest = state.sessions[0];
  const forgetAt =
    oldest && Number.isFinite(config.latenessMs) ? oldest.summary.endTs + config.timeoutMs + config.latenessMs : null;
  return { closeAt, forgetAt };
}

/** The earliest of `nextDeadlines`: the watermark at which this key next needs a reconcile. */
export function nextDeadline(state: KeyState, config: EngineConfig): number | null {
  const { closeAt, forgetAt } = nextDeadlines(state, config);
  if (closeAt === null) return forgetAt;
  if (forgetAt === null) return closeAt;
  return Math.min(closeAt, forgetAt);
}

/** True when the key holds nothing worth keeping (all sessions forgotten, nothing pending). */
export function isIdle(state: KeyState): boolean {
  return state.sessions.length === 0 && state.retracted.length === 0;
}
