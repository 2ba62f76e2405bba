/**
 * One user key's recalculation: the engine from a clean start point with a numbering seed, the
 * cut where the live worker's part begins, and the counters the worker's state must carry.
 */
import { applyEvent, newKeyState, reconcile } from '../../../src/engine/engine';
import type { SessionRow } from '../../../src/engine/session-row';
import { parseSessionEvent } from '../../../src/events/parse-event';
import type { SessionEvent } from '../../../src/events/session-event';
import { recalculateUser, type UserRecalcInput } from '../../../src/recalc/user-recalc';

const MINUTE = 60_000;
const T = 30 * MINUTE;
const t0 = Date.UTC(2024, 4, 1, 10);

function ev(id: string, at: number, extra: Record<string, unknown> = {}): SessionEvent {
  const parsed = parseSessionEvent(JSON.stringify({ event_id: id, type: 'page_view', timestamp: at, anonymous_id: 'u', page: { path: `/${id}` }, ...extra }));
  if (parsed instanceof Error) throw parsed;
  return parsed;
}

/** What the worker would have written for these events (closed, version 1), numbered after `seed`. */
function sessions(events: SessionEvent[], seed = { count: 0, lastId: '' }): SessionRow[] {
  const state = newKeyState('u');
  state.forgottenCount = seed.count;
  state.forgottenLastId = seed.lastId;
  const config = { timeoutMs: T, latenessMs: Infinity };
  for (const e of [...events].sort((a, b) => a.ts - b.ts)) applyEvent(state, e, config, e.ts);
  return reconcile(state, config, Infinity).flatMap((c) => (c.write ? [c.write] : []));
}

function input(overrides: Partial<UserRecalcInput>): UserRecalcInput {
  return {
    userKey: 'u',
    from: t0,
    seed: { count: 0, lastId: '' },
    events: [],
    current: [],
    maxVersions: new Map(),
    retainedFrom: Infinity,
    workerHorizon: Infinity,
    ...overrides,
  };
}

const byTime = (events: SessionEvent[]) => [...events].sort((a, b) => a.ts - b.ts);

describe('recalculateUser', () => {
  it('writes nothing when ClickHouse already holds what the events give', () => {
    const events = [ev('a', t0), ev('b', t0 + MINUTE), ev('c', t0 + 2 * T)];
    const result = recalculateUser(input({ events, current: sessions(events) }), { timeoutMs: T });
    expect(result.rows).toEqual([]);
    expect(result).toMatchObject({ unchanged: 2, recomputed: 2, counters: { count: 2 }, cut: Infinity });
  });

  it('merges two sessions a late event bridges, and renumbers the ones after', () => {
    const streamed = [ev('a', t0), ev('c', t0 + 40 * MINUTE), ev('d', t0 + 3 * T)];
    const late = ev('b', t0 + 20 * MINUTE);
    const current = sessions(streamed);
    const result = recalculateUser(input({ events: byTime([...streamed, late]), current }), { timeoutMs: T });
    const [first, second, third] = current as [SessionRow, SessionRow, SessionRow];
    expect(result).toMatchObject({ changed: 2, vanished: 1, added: 0 });
    const written = result.rows.filter((r) => r.sign === 1);
    expect(written.map((r) => [r.session_id, r.events, r.session_number, r.previous_session_id, r.version])).toEqual([
      [first.session_id, 3, 1, '', 2],
      [third.session_id, 1, 2, first.session_id, 2],
    ]);
    expect(result.rows.filter((r) => r.sign === -1).map((r) => r.session_id).sort()).toEqual(
      [first.session_id, second.session_id, third.session_id].sort(),
    );
    expect(result.counters).toEqual({ count: 2, lastId: third.session_id });
  });

  it('continues numbering from the seed', () => {
    const events = [ev('a', t0), ev('b', t0 + 2 * T)];
    const result = recalculateUser(input({ events, seed: { count: 4, lastId: 'before' } }), { timeoutMs: T });
    const written = result.rows.filter((r) => r.sign === 1);
    expect(written.map((r) => [r.session_number, r.previous_session_id])).toEqual([
      [5, 'before'],
      [6, (written[0] as SessionRow).session_id],
    ]);
    expect(result.counters?.count).toBe(6);
  });

  it('stops at the first session the worker holds, and gives the counters it must number from', () => {
    const early = [ev('a', t0), ev('b', t0 + 2 * T)];
    const live = [ev('x', t0 + 5 * T), ev('y', t0 + 5 * T + MINUTE)];
    const tooLate = ev('n', t0 + T); // a new session before the worker's, so its numbers shift
    const current = sessions([...early, ...live]);
    const retainedFrom = t0 + 5 * T;
    const result = recalculateUser(input({ events: byTime([...early, ...live, tooLate]), current, retainedFrom }), { timeoutMs: T });
    expect(result.cut).toBe(retainedFrom);
    // The worker's row is not touched: only sessions before it are written.
    expect(result.rows.every((r) => Date.parse(r.started_at) < retainedFrom)).toBe(true);
    expect(result.added).toBe(1);
    const lastBefore = result.rows.filter((r) => r.sign === 1).pop() as SessionRow;
    expect(lastBefore.session_number).toBe(3);
    expect(result.counters).toEqual({ count: 3, lastId: lastBefore.session_id });
    expect(result.events).toBe(3);
  });

  it('leaves sessions within the worker’s reach (ending after its horizon) alone', () => {
    const old = [ev('a', t0)];
    const recent = [ev('r', t0 + 4 * T)];
    const standing = sessions([...old, ...recent]);
    const lateOld = ev('b', t0 + MINUTE);
    const lateRecent = ev('s', t0 + 4 * T + MINUTE);
    const result = recalculateUser(
      input({ events: byTime([...old, ...recent, lateOld, lateRecent]), current: standing, workerHorizon: t0 + 4 * T - MINUTE }),
      { timeoutMs: T },
    );
    expect(result.cut).toBe(t0 + 4 * T);
    expect(result.rows.map((r) => [r.session_id, r.sign, r.events])).toEqual([
      [standing[0]?.session_id, -1, 1],
      [standing[0]?.session_id, 1, 2],
    ]);
    // The session left alone still counts for the worker's numbering.
    expect(result.counters).toEqual({ count: 2, lastId: standing[1]?.session_id });
  });

  it('moves the cut earlier while a standing session spans it (a larger old T)', () => {
    // Written with T = 60 min: one session from t0 to t0 + 50 min. With T = 30 min it splits in two.
    const events = [ev('a', t0), ev('b', t0 + 50 * MINUTE)];
    const oldT = recalculateUser(input({ events }), { timeoutMs: 2 * T });
    const standing = oldT.rows.filter((r) => r.sign === 1).map(({ sign: _sign, ...r }) => r);
    // The worker holds a session starting at t0 + 50 min, inside the standing one.
    const result = recalculateUser(input({ events, current: standing, retainedFrom: t0 + 50 * MINUTE }), { timeoutMs: T });
    expect(result.cut).toBe(t0);
    expect(result.rows).toEqual([]);
    expect(result.counters).toEqual({ count: 1, lastId: standing[0]?.session_id });
  });

  it('does nothing when the worker holds sessions from the start point on', () => {
    const events = [ev('a', t0)];
    const result = recalculateUser(input({ events, retainedFrom: t0 }), { timeoutMs: T });
    expect(result).toMatchObject({ rows: [], counters: null, recomputed: 0 });
  });

  it('cancels sessions whose events are gone', () => {
    const current = sessions([ev('a', t0), ev('b', t0 + 2 * T)]);
    const result = recalculateUser(input({ events: [ev('a', t0)], current }), { timeoutMs: T });
    expect(result).toMatchObject({ unchanged: 1, vanished: 1 });
    expect(result.rows).toEqual([{ ...current[1], sign: -1 }]);
  });

  it('numbers new sessions above a cancelled version of the same id', () => {
    const events = [ev('a', t0)];
    const [only] = sessions(events) as [SessionRow];
    const result = recalculateUser(input({ events, maxVersions: new Map([[only.session_id, 3]]) }), { timeoutMs: T });
    expect(result.rows).toEqual([{ ...only, version: 4, sign: 1 }]);
  });
});
