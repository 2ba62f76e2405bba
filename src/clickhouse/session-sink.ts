/**
 * Writes the worker's output to ClickHouse: session rows (with `sign`) to `sessions`, consumed
 * events to `events`. Each insert carries an `insert_deduplication_token` chosen by the caller
 * from what the rows stand for (partition and outbox sequence, or offset range), so a flush
 * retried after a crash is dropped by ClickHouse instead of doubling a count.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { SessionChange } from '../engine/engine';
import type { SessionRow } from '../engine/session-row';

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

export class ClickHouseSink {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  insertSessions(rows: readonly SignedSessionRow[], deduplicationToken: string): Promise<void> {
    return this.insert('sessions', rows, deduplicationToken);
  }

  insertEvents(rows: readonly object[], deduplicationToken: string): Promise<void> {
    return this.insert('events', rows, deduplicationToken);
  }

  private async insert(table: string, rows: readonly object[], deduplicationToken: string): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({
      table: `${this.database}.${table}`,
      values: rows as object[],
      format: 'JSONEachRow',
      clickhouse_settings: {
        insert_deduplication_token: deduplicationToken,
        date_time_input_format: 'best_effort',
      },
    });
  }
}
