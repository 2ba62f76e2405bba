/**
 * The stored forms of a state (src/state/codec.ts): every state the engine saves comes back
 * exactly — summaries, seen ids, and the written rows, which the binary form rebuilds instead of
 * storing — and a worker that stores and reloads its states between batches emits exactly what
 * one keeping them in memory does. States in the JSON form of earlier releases still load.
 */
import { isDeepStrictEqual } from 'node:util';
import { applyEvent, newKeyState, nextDeadlines, reconcile, type EngineConfig, type KeyState, type SessionChange } from '../../../src/engine/engine';
import { sessionIdOf } from '../../../src/engine/session-row';
import { parseSessionEvent } from '../../../src/events/parse-event';
import type { SessionEvent } from '../../../src/events/session-event';
import { generateTraffic, type TrafficOptions } from '../../../src/loadgen/traffic';
import { decodeIdleRecord, decodeState, encodeIdleRecord, encodeState, encodeStateJson, expiryMinute } from '../../../src/state/codec';
import { storedState } from '../../../src/state/partition-state-store';
import { withCounters } from '../../../src/state/user-counters';

const MINUTE = 60_000;
const START = Date.parse('2024-05-01T00:00:00Z');

function eventsOf(options: TrafficOptions, limit: number): SessionEvent[] {
  const events: SessionEvent[] = [];
  for (const raw of generateTraffic(options)) {
    const event = parseSessionEvent(JSON.stringify(raw));
    if (event instanceof Error) continue;
    events.push(event);
    if (events.length >= limit) break;
  }
  return events;
}

/** The state as a plain value with the written rows' key order visible (toEqual ignores order). */
function snapshot(state: KeyState): unknown {
  return {
    ...state,
    seen: [...state.seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    sessions: state.sessions.map((s) => ({ summary: s.summary, written: s.written, rowKeys: s.written ? Object.keys(s.written) : null })),
  };
}

function expectRoundTrip(state: KeyState): Buffer {
  const value = encodeState(state);
  const back = decodeState(state.userKey, value);
  if (!isDeepStrictEqual(snapshot(back), snapshot(state))) {
    expect(snapshot(back)).toEqual(snapshot(state));
  }
  return value;
}

/**
 * Runs the engine over `events` in batches, like the worker: one copy keeps its states in memory,
 * the other stores each state after every batch and loads it again before the next.
 */
function runBoth(events: readonly SessionEvent[], config: EngineConfig, batch: number, onStored?: (state: KeyState, value: Buffer) => void) {
  const memory = new Map<string, KeyState>();
  const stored = new Map<string, Buffer>();
  const changes: { memory: SessionChange[]; stored: SessionChange[] } = { memory: [], stored: [] };
  let watermark = -Infinity;
  for (let i = 0; i < events.length; i += batch) {
    const byUser = new Map<string, Array<[SessionEvent, number]>>();
    for (const event of events.slice(i, i + batch)) {
      const arrival = watermark;
      watermark = Math.max(watermark, event.ts);
      const list = byUser.get(event.userKey) ?? [];
      list.push([event, arrival]);
      byUser.set(event.userKey, list);
    }
    for (const [userKey, list] of byUser) {
      const a = memory.get(userKey) ?? newKeyState(userKey);
      const value = stored.get(userKey);
      const b = value ? decodeState(userKey, value) : newKeyState(userKey);
      for (const [event, arrival] of list) {
        applyEvent(a, event, config, arrival);
        applyEvent(b, event, config, arrival);
      }
      changes.memory.push(...reconcile(a, config, watermark));
      changes.stored.push(...reconcile(b, config, watermark));
      memory.set(userKey, a);
      const saved = encodeState(b);
      onStored?.(b, saved);
      stored.set(userKey, saved);
    }
  }
  return { changes, memory, stored, watermark };
}

describe('binary state', () => {
  const traffic = (seed: number): TrafficOptions => ({ users: 200, startMs: START, spanMs: 2 * 86_400_000, duplicateRate: 0.05, disorderMs: 20 * MINUTE, timeoutMs: 30 * MINUTE, seed });

  it.each([1, 2, 3, 4])('gives back every state the engine saves, rows included, over generated traffic (seed %i)', (seed) => {
    const events = eventsOf(traffic(seed), 3_000);
    const config = { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE };
    let saves = 0;
    let binary = 0;
    let withSessions = 0;
    let several = 0;
    let renumbered = 0;
    const { changes, memory, stored } = runBoth(events, config, 97, (state, value) => {
      expectRoundTrip(state);
      saves += 1;
      if (value[0] === 1) binary += 1;
      if (state.sessions.length > 0) withSessions += 1;
      if (state.sessions.length > 1) several += 1;
      if (state.sessions.length > 0 && state.forgottenCount > 0) renumbered += 1;
    });
    // The traffic reaches every path: several sessions per key, forgotten ones, merges.
    expect([several, renumbered].every((n) => n > 0)).toBe(true);
    expect(changes.memory.some((c) => c.kind === 'retract')).toBe(true);
    // Stored and reloaded between batches, the engine writes exactly the same rows.
    expect(changes.stored).toEqual(changes.memory);
    for (const [userKey, state] of memory) expect(snapshot(decodeState(userKey, stored.get(userKey) as Buffer))).toEqual(snapshot(state));
    expect(withSessions).toBeGreaterThan(100);
    expect(binary).toBe(saves); // a reconciled state never needs the JSON fallback
  });

  it('is binary for every reconciled state, and several times smaller than the JSON form', () => {
    const events = eventsOf(traffic(5), 2_000);
    let binaryBytes = 0;
    let jsonBytes = 0;
    runBoth(events, { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE }, 50, (state, value) => {
      expect(value[0]).toBe(1);
      binaryBytes += value.length;
      jsonBytes += Buffer.byteLength(encodeStateJson(state));
    });
    expect(binaryBytes * 3).toBeLessThan(jsonBytes);
  });

  it('keeps the numbering the rows were written with after recalculation changed the counters, until the worker reconciles', () => {
    const config = { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE };
    const { memory, stored, watermark } = runBoth(eventsOf(traffic(6), 2_000), config, 80);
    let adjusted = 0;
    for (const [userKey, state] of memory) {
      if (state.sessions.length === 0) continue;
      adjusted += 1;
      const value = withCounters(userKey, { where: 'key', bytes: stored.get(userKey) as Buffer }, state.forgottenCount + 3, 'f'.repeat(32), Date.now(), 3600);
      expect(value[0]).toBe(1);
      const loaded = decodeState(userKey, value);
      expect(loaded.forgottenCount).toBe(state.forgottenCount + 3);
      expect(loaded.forgottenLastId).toBe('f'.repeat(32));
      expect(loaded.sessions).toEqual(state.sessions); // rows as written, with the old numbers
      expectRoundTrip(loaded);
      // The next reconcile renumbers exactly as it would have in memory.
      state.forgottenCount += 3;
      state.forgottenLastId = 'f'.repeat(32);
      const inMemory = reconcile(state, config, watermark);
      expect(inMemory.length).toBeGreaterThan(0);
      expect(reconcile(loaded, config, watermark)).toEqual(inMemory);
      expect(snapshot(decodeState(userKey, encodeState(loaded)))).toEqual(snapshot(state));
    }
    expect(adjusted).toBeGreaterThan(5);
  });

  it('keeps a version a repair gave a written row', () => {
    const { memory } = runBoth(eventsOf(traffic(7), 1_000), { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE }, 100);
    const state = [...memory.values()].find((s) => s.sessions.length > 0) as KeyState;
    for (const session of state.sessions) if (session.written) session.written = { ...session.written, version: session.written.version + 7 };
    expect(encodeState(state)[0]).toBe(1);
    expectRoundTrip(state);
  });

  it('falls back to JSON for what it cannot give back exactly, and reads it back', () => {
    const config = { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE };
    const [first, second] = eventsOf({ users: 1, startMs: START, spanMs: MINUTE, seed: 9 }, 2) as [SessionEvent, SessionEvent];
    // An event applied but not reconciled yet: its session has no written row.
    const fresh = newKeyState(first.userKey);
    applyEvent(fresh, first, config, first.ts);
    expect(encodeState(fresh)[0]).toBe(0x7b);
    expectRoundTrip(fresh);
    // A written row behind its summary (an event applied since): the stale row must survive.
    reconcile(fresh, config, first.ts);
    applyEvent(fresh, second, config, second.ts);
    expect(encodeState(fresh)[0]).toBe(0x7b);
    expectRoundTrip(fresh);
    // A time that is not a whole millisecond.
    const odd = newKeyState('odd');
    applyEvent(odd, { ...first, userKey: 'odd', ts: first.ts + 0.5 }, config, first.ts);
    reconcile(odd, config, first.ts);
    expect(encodeState(odd)[0]).toBe(0x7b);
    expectRoundTrip(odd);
  });

  it('stores ids and values of any shape: UUIDs, hex, Unicode, long text, ids outside every session', () => {
    const config = { timeoutMs: 30 * MINUTE, latenessMs: 60 * MINUTE };
    const state = newKeyState('9b2f0c3e-1d4a-4f5b-8c6d-7e8f9a0b1c2d');
    const base = { userKey: state.userKey, isView: true, keyEvent: false, channel: 'web' as const, anonymousId: state.userKey, userId: '', source: 'news.example', medium: 'referral', campaign: 'spring ☀', term: '', content: '', deviceType: 'mobile', os: 'iOS', browser: 'Safari 17.4.1', appVersion: '', country: 'DE', region: 'BE', city: 'Köln' };
    const ids = ['0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 'ABCDEF01-2345-6789-ABCD-EF0123456789', 'deadbeefdeadbeefdeadbeefdeadbeef', 'e', 'ü'.repeat(40), 'x'.repeat(128)];
    ids.forEach((eventId, i) =>
      applyEvent(state, { ...base, eventId, ts: START + i * 1000 + (i === 3 ? 0 : 1), location: `/p/${'ä'.repeat(i * 20)}`, userId: i === 4 ? 'user-😀' : '' }, config, START),
    );
    applyEvent(state, { ...base, eventId: 'later', ts: START + 3 * 60 * MINUTE, location: '/' }, config, START);
    reconcile(state, config, START + 10 * MINUTE);
    state.seen.set('stray', START - 5 * MINUTE); // an id in no session's span
    state.forgottenCount = 2;
    state.forgottenLastId = sessionIdOf(state.userKey, START - 86_400_000);
    expect(state.sessions).toHaveLength(2);
    const value = expectRoundTrip(state);
    expect(value[0]).toBe(1);
    expect(nextDeadlines(decodeState(state.userKey, value), config)).toEqual(nextDeadlines(state, config));
  });

  it('refuses values it does not know', () => {
    const state = newKeyState('u');
    expect(() => decodeState('u', Buffer.from([9, 0, 0]))).toThrow(/format 9/);
    expect(() => decodeState('u', Buffer.from([1, 0]))).toThrow(/ends early/);
    expect(() => decodeState('u', Buffer.concat([encodeState(state), Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => decodeState('u', Buffer.alloc(0))).toThrow(/format/);
  });
});

describe('states of earlier releases (JSON)', () => {
  it('load as they were written', () => {
    // A state as the previous release stored it (one open session).
    const json =
      '{"c":1,"l":"bd4d15e6ff9178bc7936f89265ccfc25","s":[[{"startTs":1714527681808,"startId":"e-1513-6","endTs":1714527997510,"endId":"e-1513-13","events":2,"views":0,"keyEvent":false,"channel":"server","source":"(direct)","medium":"(none)","campaign":"","term":"","content":"","entry":null,"exit":null,"userId":["user-1513",1714527997510,"e-1513-13"],"firsts":{"anonymousId":["anon-1513",1714527681808,"e-1513-6"]}},' +
      '["10b9f524388c332ffe8fc54373389728","anon-1513","anon-1513","user-1513","2024-05-01T01:41:21.808Z","2024-05-01T01:46:37.510Z",315702,2,0,"","","(direct)","(none)","","","","server","","","","","","","",1,0,2,"bd4d15e6ff9178bc7936f89265ccfc25",1,3]]],"d":[["e-1513-6",1714527681808],["e-1513-13",1714527997510]]}';
    for (const value of [json, Buffer.from(json)]) {
      const state = decodeState('anon-1513', value);
      expect(state).toMatchObject({ forgottenCount: 1, forgottenLastId: 'bd4d15e6ff9178bc7936f89265ccfc25' });
      expect(state.seen).toEqual(new Map([['e-1513-6', 1714527681808], ['e-1513-13', 1714527997510]]));
      expect(state.sessions[0]?.written).toMatchObject({ session_id: '10b9f524388c332ffe8fc54373389728', session_number: 2, is_open: 1, version: 3, duration_ms: 315702 });
      // Saved again, it becomes binary, and comes back the same.
      const again = encodeState(state);
      expect(again[0]).toBe(1);
      expect(snapshot(decodeState('anon-1513', again))).toEqual(snapshot(state));
    }
    expect(decodeState('k', '{"c":3,"l":"x"}')).toEqual({ ...newKeyState('k'), forgottenCount: 3, forgottenLastId: 'x' });
  });

  it('are what encodeStateJson writes', () => {
    const events = eventsOf({ users: 20, startMs: START, spanMs: 86_400_000, seed: 11 }, 400);
    const { memory } = runBoth(events, { timeoutMs: 30 * MINUTE, latenessMs: 15 * MINUTE }, 40);
    for (const state of memory.values()) expect(snapshot(decodeState(state.userKey, encodeStateJson(state)))).toEqual(snapshot(state));
  });
});

describe('idle records', () => {
  it('hold the count, the last id and the expiry in a few bytes', () => {
    const record = { count: 300, lastId: sessionIdOf('u', START), expiresAtMinute: expiryMinute(START, 400 * 86_400) };
    const value = encodeIdleRecord(record);
    expect(value.length).toBeLessThanOrEqual(24);
    expect(value[0]).toBe(1);
    expect(value.readUInt32BE(1)).toBe(record.expiresAtMinute); // where the sweep script reads it
    expect(decodeIdleRecord(value)).toEqual(record);
    expect(decodeIdleRecord(encodeIdleRecord({ count: 1, lastId: 'not hex', expiresAtMinute: 5 }))).toEqual({ count: 1, lastId: 'not hex', expiresAtMinute: 5 });
  });

  it('count as absent once expired', () => {
    const value = encodeIdleRecord({ count: 2, lastId: 'a', expiresAtMinute: 1000 });
    expect(storedState('u', { where: 'idle', bytes: value }, 999 * MINUTE)).toEqual({ ...newKeyState('u'), forgottenCount: 2, forgottenLastId: 'a' });
    expect(storedState('u', { where: 'idle', bytes: value }, 1000 * MINUTE)).toBeNull();
  });

  it('get new counters from recalculation with their expiry kept, or a fresh one', () => {
    const old = encodeIdleRecord({ count: 2, lastId: 'a', expiresAtMinute: 1000 });
    expect(decodeIdleRecord(withCounters('u', { where: 'idle', bytes: old }, 5, 'b', 0, 60))).toEqual({ count: 5, lastId: 'b', expiresAtMinute: 1000 });
    expect(decodeIdleRecord(withCounters('u', null, 5, 'b', 10 * MINUTE, 120))).toEqual({ count: 5, lastId: 'b', expiresAtMinute: 12 });
    // A compact record of an earlier release, under the user's key, stays a state there.
    expect(decodeState('u', withCounters('u', { where: 'key', bytes: Buffer.from('{"c":1,"l":"x"}') }, 4, 'y', 0, 60))).toEqual({ ...newKeyState('u'), forgottenCount: 4, forgottenLastId: 'y' });
  });
});
