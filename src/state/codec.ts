/**
 * The stored form of a user key's engine state: compact JSON. A key whose sessions were all
 * forgotten shrinks to `{"c":count,"l":lastSessionId}`: the long-lived record that numbers the
 * user's next session right even months later.
 */
import type { KeyState, TrackedSession } from '../engine/engine';
import { SESSION_FIELDS, type SessionRow } from '../engine/session-row';
import type { SessionSummary } from '../engine/summary';

interface StoredState {
  /** Forgotten session count and last forgotten session id. */
  c: number;
  l: string;
  /** Sessions: summary and the written row (as an array, see encodeRow). */
  s?: Array<[SessionSummary, unknown[] | null]>;
  /** Seen event ids with their time. */
  d?: Array<[string, number]>;
}

export function encodeState(state: KeyState): string {
  if (state.retracted.length > 0) throw new Error('encodeState: reconcile the state before saving it');
  const stored: StoredState = { c: state.forgottenCount, l: state.forgottenLastId };
  if (state.sessions.length > 0) {
    stored.s = state.sessions.map((s) => [s.summary, s.written ? encodeRow(s.written) : null]);
    stored.d = [...state.seen];
  }
  return JSON.stringify(stored);
}

export function decodeState(userKey: string, text: string): KeyState {
  const stored = JSON.parse(text) as StoredState;
  const sessions: TrackedSession[] = (stored.s ?? []).map(([summary, row]) => ({
    summary,
    written: row ? decodeRow(row) : null,
  }));
  return {
    userKey,
    sessions,
    seen: new Map(stored.d ?? []),
    forgottenCount: stored.c,
    forgottenLastId: stored.l,
    retracted: [],
  };
}

/** A row as an array in `SESSION_FIELDS` order, then `is_open` and `version`: half the bytes. */
function encodeRow(row: SessionRow): unknown[] {
  const values: unknown[] = SESSION_FIELDS.map((field) => row[field]);
  values.push(row.is_open, row.version);
  return values;
}

function decodeRow(values: unknown[]): SessionRow {
  const row: Record<string, unknown> = {};
  SESSION_FIELDS.forEach((field, i) => (row[field] = values[i]));
  row.is_open = values[SESSION_FIELDS.length];
  row.version = values[SESSION_FIELDS.length + 1];
  return row as unknown as SessionRow;
}
