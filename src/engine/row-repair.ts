/**
 * Making the rows ClickHouse holds for one user key agree with what the key's state says it
 * wrote, after the state lost commits whose rows had already reached ClickHouse (Redis restored
 * from an older copy, a failover to a lagging replica). Replaying the lost events rebuilds the
 * state, but the lost commits' rows stay in the table beside the rows written again: the same
 * row twice, or an older state of a session that is never cancelled. Pure: no I/O.
 *
 * `sessions` is a VersionedCollapsingMergeTree(sign, version): rows of one session and version
 * cancel in +1/−1 pairs, by count, whatever else they hold. So for each session in reach, the
 * net count of each distinct row of each version is taken from all its rows (not FINAL), and:
 *   - the session is consistent when exactly the wanted row stands once (net +1) and every other
 *     row nets to 0: nothing to do;
 *   - otherwise every row is brought to net 0 (copies with the opposite sign) and the wanted row
 *     is written again under a version above every version the session ever had (which becomes
 *     the state's written row, if the state still holds the session).
 */
import { SESSION_FIELDS, type SessionRow } from './session-row';

export interface StoredSessionRow extends SessionRow {
  sign: 1 | -1;
}

/** The net count (+1 rows minus −1 rows) of each distinct row content, per version of one session. */
type VersionCounts = Map<string, { net: number; row: StoredSessionRow }>;

export interface Repair {
  /** Rows to insert. */
  rows: StoredSessionRow[];
  /** Sessions whose wanted row was written again, under a new version: the state's written row now. */
  rewritten: Map<string, SessionRow>;
}

/**
 * The rows to insert so that `stored` (every row ClickHouse holds for one key's sessions in
 * reach) leaves exactly the `wanted` rows standing: per session id, the row that should stand,
 * or null for none. A stored session that is not wanted at all is treated as null.
 */
export function repairRows(wanted: ReadonlyMap<string, SessionRow | null>, stored: readonly StoredSessionRow[]): Repair {
  const bySession = new Map<string, Map<number, VersionCounts>>();
  for (const row of stored) {
    let versions = bySession.get(row.session_id);
    if (!versions) bySession.set(row.session_id, (versions = new Map()));
    let contents = versions.get(row.version);
    if (!contents) versions.set(row.version, (contents = new Map()));
    const key = contentKey(row);
    const entry = contents.get(key);
    if (entry) entry.net += row.sign;
    else contents.set(key, { net: row.sign, row });
  }

  const repair: Repair = { rows: [], rewritten: new Map() };
  for (const sessionId of new Set([...wanted.keys(), ...bySession.keys()])) {
    const versions = bySession.get(sessionId) ?? new Map<number, VersionCounts>();
    const want = wanted.get(sessionId) ?? null;
    if (consistent(versions, want)) continue;
    // Each content of each version back to net 0: right for FINAL (pairs cancel by count) and
    // for sums without FINAL (each content cancels itself).
    let maxVersion = want?.version ?? 0;
    for (const [version, contents] of versions) {
      maxVersion = Math.max(maxVersion, version);
      for (const { net, row } of contents.values()) {
        for (let i = 0; i < Math.abs(net); i++) repair.rows.push({ ...row, sign: net > 0 ? -1 : 1 });
      }
    }
    if (want) {
      const again: SessionRow = { ...want, version: maxVersion + 1 };
      repair.rewritten.set(sessionId, again);
      repair.rows.push({ ...again, sign: 1 });
    }
  }
  return repair;
}

function consistent(versions: ReadonlyMap<number, VersionCounts>, written: SessionRow | null): boolean {
  const writtenKey = written ? contentKey(written) : '';
  let standing = false;
  for (const [version, contents] of versions) {
    for (const [key, { net }] of contents) {
      const wanted = written !== null && version === written.version && key === writtenKey ? 1 : 0;
      if (net !== wanted) return false;
      if (wanted === 1) standing = true;
    }
  }
  return written === null || standing;
}

/** The fields that make two rows of one session and version the same row. */
function contentKey(row: SessionRow): string {
  let key = String(row.is_open);
  for (const field of SESSION_FIELDS) key += `\u0000${row[field]}`;
  return key;
}
