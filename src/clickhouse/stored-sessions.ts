/**
 * Every row `sessions` holds for some user keys' recent sessions, cancelled ones included (not
 * FINAL): what a repair after lost state commits compares with the state (engine/row-repair.ts).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { StoredSessionRow } from '../engine/row-repair';
import { visitorKeyOfRow } from '../engine/session-row';
import { siteOfKey, userKeyOfKey } from '../events/visitor-key';
import { SESSION_COLUMNS as SELECTED_COLUMNS, toSessionRow } from '../recalc/clickhouse-source';
import { queryAll } from './external-data';

export class StoredSessions {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  /**
   * Per visitor key (site and user key, src/events/visitor-key.ts): all rows of its sessions that have a row ending at or after `endedSinceMs`,
   * or whose id is in `sessionIds` (the sessions the state holds), in insertion-independent order.
   */
  async rowsOf(userKeys: readonly string[], endedSinceMs: number, sessionIds: readonly string[]): Promise<Map<string, StoredSessionRow[]>> {
    const byKey = new Map<string, StoredSessionRow[]>();
    if (userKeys.length === 0) return byKey;
    // User keys and session ids travel in the body (external data), never in the URL.
    const raws = await queryAll<Record<string, unknown>>(this.client, {
      query: `SELECT ${SELECTED_COLUMNS}, sign FROM ${this.database}.sessions
        WHERE (site, user_key) IN (SELECT site, user_key FROM repair_keys) AND session_id IN (
          SELECT session_id FROM ${this.database}.sessions
          WHERE (site, user_key) IN (SELECT site, user_key FROM repair_keys)
            AND (toUnixTimestamp64Milli(ended_at) >= {since:Int64} OR session_id IN (SELECT session_id FROM repair_ids)))
        ORDER BY site, user_key, session_id, version, sign`,
      tables: [
        { name: 'repair_keys', structure: 'site String, user_key String', rows: userKeys.map((k) => [siteOfKey(k), userKeyOfKey(k)]) },
        { name: 'repair_ids', structure: 'session_id String', rows: sessionIds.map((id) => [id]) },
      ],
      params: { since: Number.isFinite(endedSinceMs) ? Math.trunc(endedSinceMs) : 0 },
      settings: { output_format_json_quote_64bit_integers: 0 },
      doing: `reading the stored session rows of ${userKeys.length} user keys to repair`,
    });
    for (const raw of raws) {
      const row = { ...toSessionRow(raw), sign: Number(raw.sign) === -1 ? -1 : 1 } as StoredSessionRow;
      const key = visitorKeyOfRow(row);
      const list = byKey.get(key);
      if (list) list.push(row);
      else byKey.set(key, [row]);
    }
    return byKey;
  }
}
