/**
 * The difference between the sessions ClickHouse holds and the sessions recalculation found,
 * as the rows that turn one into the other in `sessions` (VersionedCollapsingMergeTree(sign,
 * version)). Pure: no I/O.
 *
 * For each session id:
 *   - the current row equals the recomputed one (every session field and `is_open`): nothing;
 *   - it differs (a shifted `session_number` or `previous_session_id` counts): a cancel row, an
 *     exact copy of the current row with sign −1 and its version, then the new row with sign +1
 *     and a higher version;
 *   - the id is no longer recomputed (merged, split, moved start): a cancel row;
 *   - a new id: the new row with sign +1.
 *
 * A new row's version is one above every version the id ever had (`maxVersions`, read from all
 * rows including cancelled ones), not simply 1: an id that comes back after being cancelled
 * must not reuse a version whose +1/−1 pair already collapsed, and an insert with those rows
 * must not look like an earlier one to the deduplication token.
 *
 * Two current rows for one id (a table damaged by some other writer) both get cancelled and
 * replaced by one, so the diff also repairs that.
 */
import { sameContent, type SessionRow } from '../engine/session-row';
import type { SignedSessionRow } from '../clickhouse/session-sink';

export interface SessionDiff {
  /** Per session in recomputed order: its cancel rows, then its new row; then the vanished ones. */
  rows: SignedSessionRow[];
  unchanged: number;
  changed: number;
  added: number;
  vanished: number;
}

/**
 * @param current rows standing in ClickHouse now (`FINAL WHERE sign = 1`), with their versions
 * @param recomputed the rows recalculation wants for the same range; their `version` is ignored
 * @param maxVersions highest version each session id ever had, cancelled rows included
 */
export function diffSessions(
  current: readonly SessionRow[],
  recomputed: readonly SessionRow[],
  maxVersions: ReadonlyMap<string, number> = new Map(),
): SessionDiff {
  const diff: SessionDiff = { rows: [], unchanged: 0, changed: 0, added: 0, vanished: 0 };
  const byId = new Map<string, SessionRow[]>();
  for (const row of [...current].sort(currentOrder)) {
    const rows = byId.get(row.session_id);
    if (rows) rows.push(row);
    else byId.set(row.session_id, [row]);
  }

  for (const wanted of recomputed) {
    const standing = byId.get(wanted.session_id) ?? [];
    byId.delete(wanted.session_id);
    if (standing.length === 1 && sameContent(standing[0] as SessionRow, wanted)) {
      diff.unchanged += 1;
      continue;
    }
    let version = maxVersions.get(wanted.session_id) ?? 0;
    for (const row of standing) {
      diff.rows.push({ ...row, sign: -1 });
      version = Math.max(version, row.version);
    }
    diff.rows.push({ ...wanted, version: version + 1, sign: 1 });
    if (standing.length > 0) diff.changed += 1;
    else diff.added += 1;
  }

  for (const rows of byId.values()) {
    for (const row of rows) diff.rows.push({ ...row, sign: -1 });
    diff.vanished += 1;
  }
  return diff;
}

/** By start, then id, then version: the rows' order never depends on how they were read. */
function currentOrder(a: SessionRow, b: SessionRow): number {
  if (a.started_at !== b.started_at) return a.started_at < b.started_at ? -1 : 1;
  if (a.session_id !== b.session_id) return a.session_id < b.session_id ? -1 : 1;
  return a.version - b.version;
}
