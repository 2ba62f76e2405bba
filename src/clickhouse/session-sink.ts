/**
 * Writes the worker's output to ClickHouse: session rows (with `sign`) to `sessions`, consumed
 * events to `events`. Each insert carries an `insert_deduplication_token` chosen by the caller
 * from what the rows stand for (partition and outbox sequence, or offset range), so a flush
 * retried after a crash is dropped by ClickHouse instead of doubling a count.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { SessionChange } from '../engine/engine';
import { SESSION_FIELDS, type SessionRow } from '../engine/session-row';

export interface SignedSessionRow extends SessionRow {
  sign: 1 | -1;
}

/** A cancel row repeats the written row with sign −1 (same version), so the pair collapses. */
export function signedRows(changes: readonly SessionChange[]): SignedSessionRow[] {
  const rows: SignedSessionRow[] = [];
  for (const change of changes) {
    if (change.cancel) rows.push({ ...change.cancel, sign: -1 });
    if (change.write) rows.push({ ...change.write, sign: 1 });
  }
  return rows;
}

/** Column order of session rows as we send them (JSONCompactEachRow: arrays, no key names). */
export const SESSION_COLUMNS = [...SESSION_FIELDS, 'is_open', 'version', 'sign'] as const;

/** A session row as the array of its `SESSION_COLUMNS` values: half the bytes to store and parse. */
export type SessionValues = unknown[];

export function sessionValues(row: SignedSessionRow): SessionValues {
  return SESSION_COLUMNS.map((column) => row[column]);
}

export class ClickHouseSink {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  insertSessions(rows: readonly SessionValues[], deduplicationToken: string): Promise<void> {
    return this.insert('sessions', SESSION_COLUMNS, rows, deduplicationToken);
  }

  /** Event rows (all built by one function, so all with the same keys). */
  insertEvents(rows: readonly object[], deduplicationToken: string): Promise<void> {
    const first = rows[0];
    if (!first) return Promise.resolve();
    const columns = Object.keys(first);
    const values = rows.map((row) => columns.map((column) => (row as Record<string, unknown>)[column]));
    return this.insert('events', columns, values, deduplicationToken);
  }

  /**
   * JSONCompactEachRow with an explicit column list: ClickHouse parses it about twice as fast
   * as JSONEachRow, and we send fewer bytes.
   */
  private async insert(table: string, columns: readonly string[], values: readonly unknown[][], deduplicationToken: string): Promise<void> {
    if (values.length === 0) return;
    await this.client.insert({
      table: `${this.database}.${table}`,
      values: values as unknown[][],
      columns: columns as [string, ...string[]],
      format: 'JSONCompactEachRow',
      clickhouse_settings: {
        insert_deduplication_token: deduplicationToken,
        date_time_input_format: 'best_effort',
      },
    });
  }
}
