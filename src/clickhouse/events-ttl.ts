/**
 * The `events` table's TTL (EVENTS_TTL_DAYS): raw events are personal data, so they expire. Kept
 * out of the schema files on purpose: those are applied once and never edited, while this is
 * configuration that an operator may change at any `migrate`; so `migrate` compares the table's
 * TTL with the setting each run and alters it only when they differ. 0 removes the TTL.
 *
 * A changed TTL is applied to existing data in the background (ClickHouse's
 * `materialize_ttl_after_modify`); expired rows then go at merges, at the latest after
 * `merge_with_ttl_timeout` (4 h by default).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { LOCAL_SUFFIX } from './cluster-schema';

export interface EventsTtlResult {
  /** The TTL clause before, "" when none. */
  before: string;
  changed: boolean;
}

/** The TTL clause ClickHouse shows in `engine_full` for `days` (its own normalised spelling). */
export function ttlClause(days: number): string {
  return days > 0 ? `TTL toDateTime(timestamp) + toIntervalDay(${days})` : '';
}

/** The TTL clause in an `engine_full` text, "" when there is none. */
export function currentTtl(engineFull: string): string {
  const match = /\bTTL (.*?)(?: SETTINGS |$)/.exec(engineFull);
  return match ? `TTL ${match[1]?.trim()}` : '';
}

export async function applyEventsTtl(client: ClickHouseClient, target: { database: string; cluster?: string }, days: number): Promise<EventsTtlResult> {
  if (!Number.isInteger(days) || days < 0) throw new Error(`EVENTS_TTL_DAYS must be a whole number of days ≥ 0, not ${days}`);
  // On a cluster, `events` is a Distributed table without data (or a TTL): the rows live in
  // `events_local` on every node, and ON CLUSTER alters each of them.
  const table = target.cluster ? `events${LOCAL_SUFFIX}` : 'events';
  const result = await client.query({
    query: 'SELECT engine_full FROM system.tables WHERE database = {database:String} AND name = {table:String}',
    query_params: { database: target.database, table },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ engine_full: string }>();
  if (!row) throw new Error(`${target.database}.${table} does not exist: run the schema migrations first`);
  const before = currentTtl(row.engine_full);
  if (before === ttlClause(days)) return { before, changed: false };
  const onCluster = target.cluster ? ` ON CLUSTER '${target.cluster.replace(/'/g, "\\'")}'` : '';
  const change = days > 0 ? `MODIFY TTL toDateTime(timestamp) + INTERVAL ${days} DAY` : 'REMOVE TTL';
  await client.command({ query: `ALTER TABLE ${target.database}.${table}${onCluster} ${change}` });
  return { before, changed: true };
}
