/**
 * Every row `sessions` holds for some user keys' recent sessions, cancelled ones included (not
 * FINAL): what a repair after lost state commits compares with the state (engine/row-repair.ts).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { StoredSessionRow } from '../engine/row-repair';
import { SESSION_COLUMNS as SELECTED_COLUMNS, toSessionRow } from '../recalc/clickhouse-source';

export class StoredSessions {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  /**
   * Per user key: all rows of its sessions that have a row ending at or after `endedSinceMs`,
   * or whose id is in `sessionIds` (the sessions the state holds), in insertion-independent order.
   */
  async rowsOf(userKeys: readonly string[], endedSinceMs: number, sessionIds: readonly string[]): Promise<Map<string, StoredSessionRow[]>> {
    const byKey = new Map<string, StoredSessionRow[]>();
    if (userKeys.length === 0) return byKey;
    const result = await this.client.query({
      query: `SELECT ${SELECTED_COLUMNS}, sign FROM ${this.database}.sessions
        WHERE user_key IN {keys:Array(String)} AND session_id IN (
          SELECT session_id FROM ${this.database}.sessions
          WHERE user_key IN {keys:Array(String)}
            AND (toUnixTimestamp64Milli(ended_at) >= {since:Int64} OR session_id IN {ids:Array(String)}))
        ORDER BY user_key, session_id, version, sign`,
      query_params: { keys: userKeys, since: Number.isFinite(endedSinceMs) ? Math.trunc(endedSinceMs) : 0, ids: sessionIds },
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    for (const raw of (await result.json()) as Array<Record<string, unknown>>) {
      const row = { ...toSessionRow(raw), sign: Number(raw.sign) === -1 ? -1 : 1 } as StoredSessionRow;
      const list = byKey.get(row.user_key);
      if (list) list.push(row);
      else byKey.set(row.user_key, [row]);
    }
    return byKey;
  }
}
