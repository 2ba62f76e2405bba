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
 *
 * Sites: a report reads one site (`site`, the first column of every sorting key, so only that
 * site's parts are read) or every site side by side (`bySite`: a row per day, site and group).
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
  /** Only this site's sessions; absent: every site. */
  site?: string;
  /** One row per site too (the rows carry `site`). */
  bySite?: boolean;
}

/** What the tables add up, for one day and group. */
export interface ReportTotals {
  day: string;
  /** The site of the row, when the report is by site. */
  site?: string;
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

/** Rows ordered by day, then site, then most sessions first, then group. */
export function compareReportRows(a: ReportTotals, b: ReportTotals): number {
  if (a.day !== b.day) return a.day < b.day ? -1 : 1;
  if ((a.site ?? '') !== (b.site ?? '')) return (a.site ?? '') < (b.site ?? '') ? -1 : 1;
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
  st?: string;
  total_sessions: string | number;
  total_users?: string | number;
  engaged: string | number;
  bounced: string | number;
  duration: string | number;
  viewed: string | number;
}

const DAY_RANGE = (column: string) => `${column} >= {from:Date} AND ${column} <= {to:Date}`;

/** The site filter (site is the first column of every sorting key: one site reads only its parts) and grouping. */
function siteParts(query: ReportQuery): { where: string; select: string; group: string; params: Record<string, string> } {
  return {
    where: query.site !== undefined ? ' AND site = {site:String}' : '',
    select: query.bySite ? ', toString(site) AS st' : '',
    group: query.bySite ? ', st' : '',
    params: { from: query.from, to: query.to, ...(query.site !== undefined ? { site: query.site } : {}) },
  };
}

async function totalsFromRollups(client: ClickHouseClient, database: string, query: ReportQuery): Promise<ReportTotals[]> {
  const group = query.by ?? "''";
  const site = siteParts(query);
  const [sessions, users] = await Promise.all([
    rows<TotalsRecord>(client, site.params, `
      SELECT day, ${group} AS grp${site.select},
             sum(sessions) AS total_sessions, sum(engaged_sessions) AS engaged, sum(bounces) AS bounced,
             sum(duration_ms) AS duration, sum(views) AS viewed
      FROM ${database}.sessions_daily
      WHERE ${DAY_RANGE('day')}${site.where}
      GROUP BY day, grp${site.group}
      HAVING total_sessions != 0`),
    rows<{ day: string; grp: string; st?: string; total_users: string | number }>(client, site.params, `
      SELECT day, grp${site.group}, count() AS total_users
      FROM (
        SELECT day, ${group} AS grp${site.select}, user_key, sum(sessions) AS net
        FROM ${database}.users_daily
        WHERE ${DAY_RANGE('day')}${site.where}
        GROUP BY day, grp${site.group}, user_key
        HAVING net > 0
      )
      GROUP BY day, grp${site.group}`),
  ]);
  const key = (r: { day: string; grp: string; st?: string }) => `${r.day}\u0000${r.st ?? ''}\u0000${r.grp}`;
  const usersOf = new Map(users.map((u) => [key(u), Number(u.total_users)]));
  return sessions.map((r) => totalsOf({ ...r, total_users: usersOf.get(key(r)) ?? 0 }));
}

async function totalsFromSessions(
  client: ClickHouseClient,
  database: string,
  query: ReportQuery,
  group: string,
): Promise<ReportTotals[]> {
  const site = siteParts(query);
  const records = await rows<TotalsRecord>(client, site.params, `
    SELECT toDate(started_at) AS day, ${group} AS grp${site.select},
           count() AS total_sessions, uniqExact(user_key) AS total_users,
           sum(is_engaged) AS engaged, sum(is_bounce) AS bounced,
           sum(duration_ms) AS duration, sum(views) AS viewed
    FROM ${database}.sessions FINAL
    WHERE sign = 1 AND ${DAY_RANGE('toDate(started_at)')}${site.where}
    GROUP BY day, grp${site.group}`);
  return records.map(totalsOf);
}

function totalsOf(r: TotalsRecord): ReportTotals {
  return {
    day: r.day,
    ...(r.st !== undefined ? { site: r.st } : {}),
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
