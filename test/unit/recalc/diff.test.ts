/**
 * The pure diff of recalculation: rows standing in ClickHouse vs recomputed rows → the cancel
 * and new rows that turn one into the other under VersionedCollapsingMergeTree(sign, version).
 */
import { diffSessions } from '../../../src/recalc/diff';
import type { SessionRow } from '../../../src/engine/session-row';

function row(id: string, overrides: Partial<SessionRow> = {}): SessionRow {
  return {
    site: 'default',
    session_id: id,
    user_key: 'u',
    anonymous_id: 'u',
    user_id: '',
    started_at: '2024-05-01T10:00:00.000Z',
    ended_at: '2024-05-01T10:05:00.000Z',
    duration_ms: 300_000,
    events: 3,
    views: 2,
    entry_page: '/a',
    exit_page: '/b',
    source: '(direct)',
    medium: '(none)',
    campaign: '',
    term: '',
    content: '',
    channel: 'web',
    device_type: '',
    os: '',
    browser: '',
    app_version: '',
    country: '',
    region: '',
    city: '',
    is_engaged: 1,
    is_bounce: 0,
    session_number: 1,
    previous_session_id: '',
    is_open: 0,
    version: 1,
    ...overrides,
  };
}

describe('diffSessions', () => {
  it('writes nothing when every recomputed row stands already (versions do not matter)', () => {
    const current = [row('a', { version: 4 }), row('b', { started_at: '2024-05-01T11:00:00.000Z', session_number: 2, previous_session_id: 'a' })];
    const recomputed = [row('a', { version: 1 }), row('b', { started_at: '2024-05-01T11:00:00.000Z', session_number: 2, previous_session_id: 'a' })];
    const diff = diffSessions(current, recomputed);
    expect(diff.rows).toEqual([]);
    expect(diff).toMatchObject({ unchanged: 2, changed: 0, added: 0, vanished: 0 });
  });

  it('replaces a changed row: an exact copy with sign -1 and its version, then the new state one version up', () => {
    const standing = row('a', { version: 3, events: 3 });
    const wanted = row('a', { version: 1, events: 4, ended_at: '2024-05-01T10:06:00.000Z', duration_ms: 360_000 });
    const diff = diffSessions([standing], [wanted]);
    expect(diff.rows).toEqual([
      { ...standing, sign: -1 },
      { ...wanted, version: 4, sign: 1 },
    ]);
    expect(diff).toMatchObject({ unchanged: 0, changed: 1, added: 0, vanished: 0 });
  });

  it('treats a shifted session_number or previous_session_id as a change', () => {
    const standing = row('b', { session_number: 1, previous_session_id: '' });
    const diff = diffSessions([standing], [row('b', { session_number: 2, previous_session_id: 'new-first' })]);
    expect(diff.rows.map((r) => [r.sign, r.version, r.session_number, r.previous_session_id])).toEqual([
      [-1, 1, 1, ''],
      [1, 2, 2, 'new-first'],
    ]);
    expect(diff.changed).toBe(1);
  });

  it('treats is_open as part of the state', () => {
    const diff = diffSessions([row('a', { is_open: 1 })], [row('a', { is_open: 0 })]);
    expect(diff.rows.map((r) => [r.sign, r.is_open, r.version])).toEqual([
      [-1, 1, 1],
      [1, 0, 2],
    ]);
  });

  it('cancels a row whose session is no longer recomputed (merged away)', () => {
    const first = row('a');
    const second = row('b', { started_at: '2024-05-01T10:20:00.000Z', ended_at: '2024-05-01T10:21:00.000Z', session_number: 2, version: 2 });
    const merged = row('a', { ended_at: '2024-05-01T10:21:00.000Z', duration_ms: 21 * 60_000, events: 5 });
    const diff = diffSessions([first, second], [merged]);
    expect(diff.rows).toEqual([
      { ...first, sign: -1 },
      { ...merged, version: 2, sign: 1 },
      { ...second, sign: -1 },
    ]);
    expect(diff).toMatchObject({ changed: 1, vanished: 1, added: 0 });
  });

  it('writes a new session id with version 1', () => {
    const diff = diffSessions([], [row('n', { version: 7 })]);
    expect(diff.rows).toEqual([{ ...row('n'), version: 1, sign: 1 }]);
    expect(diff.added).toBe(1);
  });

  it('writes an id that comes back after a cancel one version above any it ever had', () => {
    const diff = diffSessions([], [row('n')], new Map([['n', 5]]));
    expect(diff.rows).toEqual([{ ...row('n'), version: 6, sign: 1 }]);
  });

  it('uses the highest version known for a changed row too', () => {
    const diff = diffSessions([row('a', { version: 2 })], [row('a', { events: 9 })], new Map([['a', 7]]));
    expect(diff.rows.map((r) => [r.sign, r.version])).toEqual([
      [-1, 2],
      [1, 8],
    ]);
  });

  it('repairs two standing rows of one id: cancels both, writes one', () => {
    const one = row('a', { version: 1 });
    const two = row('a', { version: 2, events: 4 });
    const diff = diffSessions([two, one], [row('a')]);
    expect(diff.rows).toEqual([
      { ...one, sign: -1 },
      { ...two, sign: -1 },
      { ...row('a'), version: 3, sign: 1 },
    ]);
    expect(diff.changed).toBe(1);
  });

  it('gives the same rows whatever order the current rows come in', () => {
    const current = [
      row('a'),
      row('b', { started_at: '2024-05-01T11:00:00.000Z' }),
      row('c', { started_at: '2024-05-01T12:00:00.000Z' }),
    ];
    const recomputed = [row('b', { started_at: '2024-05-01T11:00:00.000Z', events: 1 })];
    const forward = diffSessions(current, recomputed).rows;
    const backward = diffSessions([...current].reverse(), recomputed).rows;
    expect(backward).toEqual(forward);
    expect(forward.map((r) => [r.session_id, r.sign])).toEqual([
      ['b', -1],
      ['b', 1],
      ['a', -1],
      ['c', -1],
    ]);
  });
});
