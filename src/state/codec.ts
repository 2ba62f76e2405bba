/**
 * The stored forms of a user key's engine state.
 *
 * **Binary, format 1** (`encodeState`): what the worker writes under a user's key. The rows a
 * state's sessions last wrote are not stored: after `reconcile`, each is exactly `sessionRowOf`
 * of the session's summary, numbered after the forgotten sessions, so only its id, version and
 * `is_open` are kept and the row is rebuilt on load. The rows of a state whose counters
 * recalculation rewrote (user-counters.ts) keep their old numbering until the worker reconciles
 * the user: the numbering they were written with is then stored too. Event ids are stored once,
 * grouped by the session that holds them, with their time relative to the session's start; the
 * order keys of the summary's picks point into that group. Layout (varints, strings as in
 * bytes.ts; picks' values and the attribution share one string table):
 *
 *   byte 1 (format) · uint forgotten count · string last forgotten id · uint sessions
 *   if sessions: byte 0 (rows numbered after the forgotten ones) | 1, uint count, string id
 *   per session:
 *     byte flags (1 open, 2 key event, 4 entry, 8 exit, 16 user id) · uint version · string id
 *     int start − previous session's start (the first: − 0) · int end − start
 *     uint k · k × (string event id, int time − start)
 *     ref start · ref end · uint events · uint views
 *     strings channel, source, medium, campaign, term, content
 *     entry, exit, user id when flagged: string value, ref
 *     byte mask of FIRST_NON_EMPTY fields · each present: string value, ref
 *   uint n · n × (string event id, int time): seen ids in no session (none, normally)
 *   where ref = uint j < k: the session's j-th event; j = k: int time − start, string event id.
 * A state without sessions is the header alone (the worker keeps those as idle records instead;
 * one is found under a key only where recalculation rewrote a compact record of an earlier
 * release).
 *
 * **JSON** (`encodeStateJson`): the form of earlier releases, `{c, l, s: [[summary, row]], d}`.
 * It still loads (a rolling upgrade finds it), and `encodeState` falls back to it for a state
 * the binary form would not give back exactly: a session not reconciled since its last event,
 * irregular numbering, numbers that are not integers.
 *
 * **Idle record** (`encodeIdleRecord`): what is left of a key whose sessions were all forgotten,
 * kept in the partition's idle hashes rather than under its own key (partition-state-store.ts):
 *   byte 1 (format) · uint32 big-endian expiry, minutes since the epoch · uint count · string last id
 */
import type { KeyState, TrackedSession } from '../engine/engine';
import { SESSION_FIELDS, sessionRowOf, type SessionRow } from '../engine/session-row';
import { DEFAULT_SITE } from '../events/visitor-key';
import { FIRST_NON_EMPTY, type Pick, type SessionSummary } from '../engine/summary';
import { ByteReader, ByteWriter, Unrepresentable } from './bytes';

const FORMAT_BINARY = 1;
const FORMAT_IDLE = 1;
const JSON_OPEN = 0x7b; // '{'

const OPEN = 1;
const KEY_EVENT = 2;
const HAS_ENTRY = 4;
const HAS_EXIT = 8;
const HAS_USER_ID = 16;

/** Seen ids of a session past which refs are found through a map rather than a scan. */
const SCAN_LIMIT = 32;

/** One writer for every value: encoding is synchronous, and the writer's buffer is reused. */
const writer = new ByteWriter();

/** The value to store for a state (binary; JSON for what the binary form cannot hold exactly). */
export function encodeState(state: KeyState): Buffer {
  if (state.retracted.length > 0) throw new Error('encodeState: reconcile the state before saving it');
  try {
    return encodeBinary(state);
  } catch (err) {
    if (!(err instanceof Unrepresentable)) throw err;
    return Buffer.from(encodeStateJson(state), 'utf8');
  }
}

/** A stored state value (binary, or the JSON of earlier releases) back as a state. */
export function decodeState(userKey: string, value: Buffer | string): KeyState {
  if (typeof value === 'string') {
    if (value.charCodeAt(0) !== JSON_OPEN) throw new Error('a binary state value read as text');
    return decodeJson(userKey, value);
  }
  if (value[0] === FORMAT_BINARY) return decodeBinary(userKey, value);
  if (value[0] === JSON_OPEN) return decodeJson(userKey, value.toString('utf8'));
  throw new Error(`unknown state format ${value[0] ?? '(empty)'}`);
}

// ---------------------------------------------------------------------------------------------
// Binary
// ---------------------------------------------------------------------------------------------

interface SeenGroup {
  ids: string[];
  times: number[];
  index: Map<string, number> | null;
}

function encodeBinary(state: KeyState): Buffer {
  const w = writer;
  w.reset();
  w.byte(FORMAT_BINARY);
  w.uint(state.forgottenCount);
  w.string(state.forgottenLastId, false);
  const sessions = state.sessions;
  w.uint(sessions.length);
  let base = state.forgottenCount;
  let previousId = state.forgottenLastId;
  if (sessions.length > 0) {
    const first = (sessions[0] as TrackedSession).written;
    if (!first) throw new Unrepresentable('a session not reconciled yet');
    base = first.session_number - 1;
    previousId = first.previous_session_id;
    if (base === state.forgottenCount && previousId === state.forgottenLastId) {
      w.byte(0);
    } else {
      w.byte(1);
      w.uint(base);
      w.string(previousId, false);
    }
  }

  const { groups, orphans } = groupSeen(state);
  let previousStart = 0;
  for (let i = 0; i < sessions.length; i++) {
    const { summary, written } = sessions[i] as TrackedSession;
    if (
      !written ||
      written.session_number !== base + i + 1 ||
      written.previous_session_id !== previousId ||
      written.events !== summary.events ||
      written.views !== summary.views ||
      written.duration_ms !== summary.endTs - summary.startTs ||
      (written.is_open !== 0 && written.is_open !== 1) ||
      typeof summary.keyEvent !== 'boolean'
    ) {
      throw new Unrepresentable('a written row that is not the summary’s');
    }
    previousId = written.session_id;
    const start = summary.startTs;
    w.byte((written.is_open === 1 ? OPEN : 0) | (summary.keyEvent ? KEY_EVENT : 0) | (summary.entry ? HAS_ENTRY : 0) | (summary.exit ? HAS_EXIT : 0) | (summary.userId ? HAS_USER_ID : 0));
    w.uint(written.version);
    w.string(written.session_id, false);
    w.int(start - previousStart);
    previousStart = start;
    w.int(summary.endTs - start);
    const group = groups[i] as SeenGroup;
    const { ids, times } = group;
    w.uint(ids.length);
    for (let j = 0; j < ids.length; j++) {
      w.string(ids[j] as string, false);
      w.int((times[j] as number) - start);
    }
    writeRef(w, group, start, start, summary.startId);
    writeRef(w, group, start, summary.endTs, summary.endId);
    w.uint(summary.events);
    w.uint(summary.views);
    w.string(summary.channel, true);
    w.string(summary.source, true);
    w.string(summary.medium, true);
    w.string(summary.campaign, true);
    w.string(summary.term, true);
    w.string(summary.content, true);
    if (summary.entry) writePick(w, group, start, summary.entry);
    if (summary.exit) writePick(w, group, start, summary.exit);
    if (summary.userId) writePick(w, group, start, summary.userId);
    const firsts = summary.firsts;
    let mask = 0;
    for (let f = 0; f < FIRST_NON_EMPTY.length; f++) if (firsts[FIRST_NON_EMPTY[f] as (typeof FIRST_NON_EMPTY)[number]]) mask |= 1 << f;
    w.byte(mask);
    for (let f = 0; f < FIRST_NON_EMPTY.length; f++) {
      const pick = firsts[FIRST_NON_EMPTY[f] as (typeof FIRST_NON_EMPTY)[number]];
      if (pick) writePick(w, group, start, pick);
    }
  }
  w.uint(orphans.ids.length);
  for (let j = 0; j < orphans.ids.length; j++) {
    w.string(orphans.ids[j] as string, false);
    w.int(orphans.times[j] as number);
  }
  return w.take();
}

/** The seen event ids by the session whose span holds their time (sessions are ordered and apart). */
function groupSeen(state: KeyState): { groups: SeenGroup[]; orphans: SeenGroup } {
  const sessions = state.sessions;
  const groups: SeenGroup[] = sessions.map(() => ({ ids: [], times: [], index: null }));
  const orphans: SeenGroup = { ids: [], times: [], index: null };
  for (const [id, ts] of state.seen) {
    let group = orphans;
    for (let i = sessions.length - 1; i >= 0; i--) {
      const s = (sessions[i] as TrackedSession).summary;
      if (ts >= s.startTs) {
        if (ts <= s.endTs) group = groups[i] as SeenGroup;
        break;
      }
    }
    group.ids.push(id);
    group.times.push(ts);
  }
  return { groups, orphans };
}

function writePick(w: ByteWriter, group: SeenGroup, start: number, pick: Pick): void {
  w.string(pick[0], true);
  writeRef(w, group, start, pick[1], pick[2]);
}

function writeRef(w: ByteWriter, group: SeenGroup, start: number, ts: number, id: string): void {
  const { ids, times } = group;
  let j = -1;
  if (ids.length <= SCAN_LIMIT) {
    for (let k = 0; k < ids.length; k++) {
      if (times[k] === ts && ids[k] === id) {
        j = k;
        break;
      }
    }
  } else {
    if (!group.index) group.index = new Map(ids.map((x, k) => [x, k]));
    const k = group.index.get(id);
    if (k !== undefined && times[k] === ts) j = k;
  }
  if (j >= 0) {
    w.uint(j);
    return;
  }
  w.uint(ids.length);
  w.int(ts - start);
  w.string(id, false);
}

function decodeBinary(userKey: string, value: Buffer): KeyState {
  const r = new ByteReader(value, 1);
  const forgottenCount = r.uint();
  const forgottenLastId = r.string(false);
  const count = r.uint();
  const sessions: TrackedSession[] = [];
  const seen = new Map<string, number>();
  if (count > 0) {
    let base = forgottenCount;
    let previousId = forgottenLastId;
    const numbering = r.byte();
    if (numbering === 1) {
      base = r.uint();
      previousId = r.string(false);
    } else if (numbering !== 0) {
      throw new RangeError(`unknown numbering ${numbering}`);
    }
    let previousStart = 0;
    const ids: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const flags = r.byte();
      const version = r.uint();
      const sessionId = r.string(false);
      const start = previousStart + r.int();
      previousStart = start;
      const end = start + r.int();
      const k = r.uint();
      ids.length = 0;
      times.length = 0;
      for (let j = 0; j < k; j++) {
        const id = r.string(false);
        const ts = start + r.int();
        ids.push(id);
        times.push(ts);
        seen.set(id, ts);
      }
      readRef(r, start, ids, times);
      const startId = refId;
      readRef(r, start, ids, times);
      const endId = refId;
      const events = r.uint();
      const views = r.uint();
      const channel = r.string(true) as SessionSummary['channel'];
      const source = r.string(true);
      const medium = r.string(true);
      const campaign = r.string(true);
      const term = r.string(true);
      const content = r.string(true);
      const entry = flags & HAS_ENTRY ? readPick(r, start, ids, times) : null;
      const exit = flags & HAS_EXIT ? readPick(r, start, ids, times) : null;
      const userId = flags & HAS_USER_ID ? readPick(r, start, ids, times) : null;
      const mask = r.byte();
      const firsts: SessionSummary['firsts'] = {};
      for (let f = 0; f < FIRST_NON_EMPTY.length; f++) if (mask & (1 << f)) firsts[FIRST_NON_EMPTY[f] as (typeof FIRST_NON_EMPTY)[number]] = readPick(r, start, ids, times);
      const summary: SessionSummary = {
        startTs: start,
        startId,
        endTs: end,
        endId,
        events,
        views,
        keyEvent: (flags & KEY_EVENT) !== 0,
        channel,
        source,
        medium,
        campaign,
        term,
        content,
        entry,
        exit,
        userId,
        firsts,
      };
      const written = sessionRowOf(userKey, summary, base + i + 1, previousId, flags & OPEN ? 1 : 0, version, sessionId);
      previousId = sessionId;
      sessions.push({ summary, written });
    }
  }
  const orphans = r.uint();
  for (let j = 0; j < orphans; j++) {
    const id = r.string(false);
    seen.set(id, r.int());
  }
  if (!r.done) throw new RangeError('state value has trailing bytes');
  return { userKey, sessions, seen, forgottenCount, forgottenLastId, retracted: [] };
}

/** What `readRef` read (module state rather than a tuple per ref: decoding is synchronous). */
let refTs = 0;
let refId = '';

function readRef(r: ByteReader, start: number, ids: readonly string[], times: readonly number[]): void {
  const j = r.uint();
  if (j < ids.length) {
    refTs = times[j] as number;
    refId = ids[j] as string;
    return;
  }
  if (j > ids.length) throw new RangeError(`event reference ${j} out of range`);
  refTs = start + r.int();
  refId = r.string(false);
}

function readPick(r: ByteReader, start: number, ids: readonly string[], times: readonly number[]): Pick {
  const value = r.string(true);
  readRef(r, start, ids, times);
  return [value, refTs, refId];
}

// ---------------------------------------------------------------------------------------------
// Idle records
// ---------------------------------------------------------------------------------------------

export interface IdleRecord {
  /** Sessions of the key so far (all forgotten) and the last one's id. */
  count: number;
  lastId: string;
  /** When the record expires (USER_RECORD_TTL_DAYS after it was written): minutes since the epoch. */
  expiresAtMinute: number;
}

export function encodeIdleRecord(record: IdleRecord): Buffer {
  const w = writer;
  w.reset();
  w.byte(FORMAT_IDLE);
  w.uint32(Math.min(0xffffffff, Math.max(0, Math.ceil(record.expiresAtMinute))));
  w.uint(record.count);
  w.string(record.lastId, false);
  return w.take();
}

export function decodeIdleRecord(value: Buffer): IdleRecord {
  if (value[0] !== FORMAT_IDLE) throw new Error(`unknown idle record format ${value[0] ?? '(empty)'}`);
  const r = new ByteReader(value, 1);
  const expiresAtMinute = r.uint32();
  const count = r.uint();
  const lastId = r.string(false);
  if (!r.done) throw new RangeError('idle record has trailing bytes');
  return { count, lastId, expiresAtMinute };
}

/** The minute (since the epoch) at which a record written at `nowMs` with this TTL expires. */
export function expiryMinute(nowMs: number, ttlSeconds: number): number {
  return Math.ceil((nowMs + ttlSeconds * 1000) / 60_000);
}

// ---------------------------------------------------------------------------------------------
// JSON (earlier releases)
// ---------------------------------------------------------------------------------------------

interface StoredState {
  /** Forgotten session count and last forgotten session id. */
  c: number;
  l: string;
  /** Sessions: summary and the written row (as an array, see encodeRow). */
  s?: Array<[SessionSummary, unknown[] | null]>;
  /** Seen event ids with their time. */
  d?: Array<[string, number]>;
}

/** The JSON form of earlier releases (compact JSON, rows as arrays). */
export function encodeStateJson(state: KeyState): string {
  if (state.retracted.length > 0) throw new Error('encodeState: reconcile the state before saving it');
  const stored: StoredState = { c: state.forgottenCount, l: state.forgottenLastId };
  if (state.sessions.length > 0) {
    stored.s = state.sessions.map((s) => [s.summary, s.written ? encodeRow(s.written) : null]);
    stored.d = [...state.seen];
  }
  return JSON.stringify(stored);
}

function decodeJson(userKey: string, text: string): KeyState {
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

function decodeRow(stored: unknown[]): SessionRow {
  // A row stored before sites lacks the first field, `site`: it is of the site `default`.
  const values = stored.length === SESSION_FIELDS.length + 1 ? [DEFAULT_SITE, ...stored] : stored;
  const row: Record<string, unknown> = {};
  SESSION_FIELDS.forEach((field, i) => (row[field] = values[i]));
  row.is_open = values[SESSION_FIELDS.length];
  row.version = values[SESSION_FIELDS.length + 1];
  return row as unknown as SessionRow;
}
