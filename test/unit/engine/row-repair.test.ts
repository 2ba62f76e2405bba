import fc from 'fast-check';
import { repairRows, type StoredSessionRow } from '../../../src/engine/row-repair';
import type { SessionRow } from '../../../src/engine/session-row';

function row(sessionId: string, version: number, events: number, isOpen: 0 | 1 = 0): SessionRow {
  return {
    site: 'default', session_id: sessionId, user_key: 'u', anonymous_id: 'u', user_id: '', started_at: '2024-05-01T10:00:00.000Z', ended_at: '2024-05-01T10:05:00.000Z',
    duration_ms: 300_000, events, views: events, entry_page: '/', exit_page: '/', source: '(direct)', medium: '(none)', campaign: '', term: '', content: '',
    channel: 'web', device_type: '', os: '', browser: '', app_version: '', country: '', region: '', city: '', is_engaged: 1, is_bounce: 0,
    session_number: 1, previous_session_id: '', is_open: isOpen, version,
  };
}
const plus = (r: SessionRow): StoredSessionRow => ({ ...r, sign: 1 });
const minus = (r: SessionRow): StoredSessionRow => ({ ...r, sign: -1 });

/** What stands after inserting `rows`: net count per (session, version, content), as sums see it. */
function standing(rows: readonly StoredSessionRow[]): Map<string, number> {
  const net = new Map<string, number>();
  for (const r of rows) {
    const { sign, ...content } = r;
    const key = JSON.stringify(content);
    net.set(key, (net.get(key) ?? 0) + sign);
  }
  for (const [k, n] of net) if (n === 0) net.delete(k);
  return net;
}

describe('repairRows', () => {
  it('leaves a consistent session alone', () => {
    const w = row('s1', 2, 5);
    const stored = [plus(row('s1', 1, 3, 1)), minus(row('s1', 1, 3, 1)), plus(w)];
    expect(repairRows(new Map([['s1', w]]), stored)).toEqual({ rows: [], rewritten: new Map() });
  });

  it('a row written twice (a lost commit and its replay) stands once again, under a new version', () => {
    const w = row('s1', 1, 3);
    const { rows, rewritten } = repairRows(new Map([['s1', w]]), [plus(w), plus(w)]);
    expect(rewritten.get('s1')?.version).toBe(2);
    expect(standing([plus(w), plus(w), ...rows])).toEqual(new Map([[JSON.stringify({ ...w, version: 2 }), 1]]));
  });

  it('an older state left by a lost commit and a session only the lost commits wrote are cancelled', () => {
    const w = row('s1', 2, 8);
    const orphan = row('s1', 2, 6);
    const ghost = row('s9', 1, 1);
    const stored = [plus(row('s1', 1, 3)), minus(row('s1', 1, 3)), plus(orphan), minus(row('s1', 1, 3)), plus(w), plus(ghost)];
    const { rows } = repairRows(new Map([['s1', w]]), stored);
    expect(standing([...stored, ...rows])).toEqual(new Map([[JSON.stringify({ ...w, version: 3 }), 1]]));
  });

  it('whatever the stored rows, afterwards exactly the wanted rows stand, per version by count and per content by sum', () => {
    const arbRow = fc.record({ id: fc.constantFrom('a', 'b', 'c'), version: fc.integer({ min: 1, max: 3 }), events: fc.integer({ min: 1, max: 3 }), sign: fc.constantFrom(1 as const, -1 as const) });
    const arbWanted = fc.record({ a: fc.option(fc.integer({ min: 1, max: 3 })), b: fc.option(fc.integer({ min: 1, max: 3 })) });
    fc.assert(
      fc.property(fc.array(arbRow, { maxLength: 12 }), arbWanted, (raw, want) => {
        const stored = raw.map((r) => ({ ...row(r.id, r.version, r.events), sign: r.sign }));
        const wanted = new Map<string, SessionRow | null>();
        if (want.a !== null) wanted.set('a', row('a', 1, want.a));
        if (want.b !== null) wanted.set('b', row('b', 1, want.b));
        const { rows, rewritten } = repairRows(wanted, stored);
        const after = standing([...stored, ...rows]);
        const expected = new Map<string, number>();
        for (const [id, w] of wanted) if (w) expected.set(JSON.stringify(rewritten.get(id) ?? w), 1);
        expect(after).toEqual(expected);
        // Per session and version, the rows net to at most one (FINAL collapses by count).
        const byVersion = new Map<string, number>();
        for (const r of [...stored, ...rows]) byVersion.set(`${r.session_id}:${r.version}`, (byVersion.get(`${r.session_id}:${r.version}`) ?? 0) + r.sign);
        for (const n of byVersion.values()) expect([0, 1]).toContain(n);
      }),
    );
  });
});
