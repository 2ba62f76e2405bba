/**
 * The numbers of `sessionizer report`: per day (UTC, of `started_at`) and optionally per one
 * dimension, the sessions, distinct users, engaged and bounced sessions, total duration and
 * views, from which the rates and averages are derived.
 *
 * Sources (schemas/clickhouse/003_rollups.sql):
 * - `sessions_daily` (sign-weighted sums) and `users_daily` (net sessions per user) for the
 *   dimensions they are keyed by;
 * - `sessions FINAL WHERE sign = 1` for `entry_page`. Pages have unbounded cardinality, so a
 *   roll-up by page would be about as large as `sessions` itself (and distinct users per page
 *   would need a per-user roll-up on top); the sort key starts with toDate(started_at), so FINAL
 *   over a date range reads only those days.
 * Both give the same numbers as aggregating the current sessions (the integration tests prove
 * it after retractions and merges).
 */
import type { ClickHouseClient } from '@clickhouse/client';

export const ROLLUP_DIMENSIONS = ['channel', 'source', 'medium', 'campaign', 'device_type', 'country'] as const;
export const REPORT_DIMENSIONS = [...ROLLUP_DIMENSIONS, 'entry_page'] as const;
export type ReportDimension = (typeof REPORT_DIMENSIONS)[number];

export interface ReportQuery {
  /** First day, YYYY-MM-DD (UTC), inclusive. */
  from: string;
  /** Last day, YYYY-MM-DD (UTC), inclusive. */
  to: string;
  /** Group each day by this dimension; absent: one row per day. */
  by?: ReportDimension;
}

/** What the tables add up, for one day and group. */
export interface ReportTotals {
  day: string;
  /** Value of the `by` dimension; "" without one. */
  group: string;
  sessions: number;
  /** Distinct user keys with a session that day (in that group). */
  users: number;
  engagedSessions: number;
  bounces: number;
  durationMs: number;
  views: number;
}

export interface ReportRow extends ReportTotals {
  /** engaged sessions / sessions, 0..1 */
  engagedRate: number;
  /** bounced sessions / sessions, 0..1 */
  bounceRate: number;
  avgDurationMs: number;
  viewsPerSession: number;
}

/** The derived metrics of one day and group. */
export function reportRowOf(totals: ReportTotals): ReportRow {
  const per = (value: number) => (totals.sessions > 0 ? value / totals.sessions : 0);
  return {
    ...totals,
    engagedRate: per(totals.engagedSessions),
    bounceRate: per(totals.bounces),
    avgDurationMs: per(totals.durationMs),
    viewsPerSession: per(totals.views),
  };
}

/** Rows ordered by day, then most sessions first, then group. */
export function compareReportRows(a: ReportTotals, b: ReportTotals): number {
  if (a.day !== b.day) return a.day < b.day ? -1 : 1;
  if (a.sessions !== b.sessions) return b.sessions - a.sessions;
  return a.group < b.group ? -1 : a.group > b.group ? 1 : 0;
}

export async function sessionReport(client: ClickHouseClient, database: string, query: ReportQuery): Promise<ReportRow[]> {
  const totals = query.by === 'entry_page'
    ? await totalsFromSessions(client, database, query, 'entry_page')
    : await totalsFromRollups(client, database, query);
  return totals.map(reportRowOf).sort(compareReportRows);
}

/** Raw JSONEachRow row: a Date comes as YYYY-MM-DD, 64-bit integers quoted. */
interface TotalsRecord {
  day: string;
  grp: string;
  total_sessions: string | number;
  total_users?: string | number;
  engaged: string | number;
  bounced: string | number;
  duration: string | number;
  viewed: string | number;
}

const DAY_RANGE = (column: string) => `${column} >= {from:Date} AND ${column} <= {to:Date}`;

async function totalsFromRollups(client: ClickHouseClient, database: string, query: ReportQuery): Promise<ReportTotals[]> {
  const group = query.by ?? "''";
  const params = { from: query.from, to: query.to };
  const [sessions, users] = await Promise.all([
    rows<TotalsRecord>(client, params, `
      SELECT day, ${group} AS grp,
             sum(sessions) AS total_sessions, sum(engaged_sessions) AS engaged, sum(bounces) AS bounced,
             sum(duration_ms) AS duration, sum(views) AS viewed
      FROM ${database}.sessions_daily
      WHERE ${DAY_RANGE('day')}
      GROUP BY day, grp
      HAVING total_sessions != 0`),
    rows<{ day: string; grp: string; total_users: string | number }>(client, params, `
      SELECT day, grp, count() AS total_users
      FROM (
        SELECT day, ${group} AS grp, user_key, sum(sessions) AS net
        FROM ${database}.users_daily
        WHERE ${DAY_RANGE('day')}
        GROUP BY day, grp, user_key
        HAVING net > 0
      )
      GROUP BY day, grp`),
  ]);
  const usersOf = new Map(users.map((u) => [`${u.day}\u0000${u.grp}`, Number(u.total_users)]));
  return sessions.map((r) => totalsOf({ ...r, total_users: usersOf.get(`${r.day}\u0000${r.grp}`) ?? 0 }));
}

async function totalsFromSessions(
  client: ClickHouseClient,
  database: string,
  query: ReportQuery,
  group: string,
): Promise<ReportTotals[]> {
  const records = await rows<TotalsRecord>(client, { from: query.from, to: query.to }, `
    SELECT toDate(started_at) AS day, ${group} AS grp,
           count() AS total_sessions, uniqExact(user_key) AS total_users,
           sum(is_engaged) AS engaged, sum(is_bounce) AS bounced,
           sum(duration_ms) AS duration, sum(views) AS viewed
    FROM ${database}.sessions FINAL
    WHERE sign = 1 AND ${DAY_RANGE('toDate(started_at)')}
    GROUP BY day, grp`);
  return records.map(totalsOf);
}

function totalsOf(r: TotalsRecord): ReportTotals {
  return {
    day: r.day,
    group: r.grp,
    sessions: Number(r.total_sessions),
    users: Number(r.total_users ?? 0),
    engagedSessions: Number(r.engaged),
    bounces: Number(r.bounced),
    durationMs: Number(r.duration),
    views: Number(r.viewed),
  };
}

async function rows<T>(client: ClickHouseClient, params: Record<string, string>, sql: string): Promise<T[]> {
  const result = await client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}
