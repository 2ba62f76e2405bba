/**
 * Shared by the dashboard-*.int.test.ts files: several sites of generated traffic written as the
 * worker writes it (the real engine's signed rows, with retractions and merges), each tagged
 * with its site, and the figures every Stats API metric must give, computed in memory from the
 * sessions left standing.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { EventRow } from '../../src/clickhouse/event-row';
import type { SessionRow } from '../../src/engine/session-row';
import { generateTraffic } from '../../src/loadgen/traffic';
import { todayIn } from '../../src/dashboard/stats/date-range';
import { chunks, insertRows, simulateWorker } from './clickhouse-fixtures';

export interface SiteData {
  id: string;
  timezone: string;
  /** The sessions standing after the stream (what `FINAL WHERE sign = 1` returns). */
  current: SessionRow[];
  /** Times of key events per user key. */
  keyEvents: Map<string, number[]>;
  /** Every event stored, once per event id (as `events` holds them after merges). */
  events: EventRow[];
}

/**
 * Until the migration that gives every table a `site` column is applied, tests add it (a no-op
 * once it is there).
 */
export async function ensureSiteColumns(client: ClickHouseClient, database: string): Promise<void> {
  for (const table of ['sessions', 'events']) {
    await client.command({ query: `ALTER TABLE ${database}.${table} ADD COLUMN IF NOT EXISTS site LowCardinality(String) DEFAULT 'default'` });
  }
}

/** Generates, sessionizes and inserts one site's traffic (rows and events carry `site`). */
export async function writeSite(
  client: ClickHouseClient,
  database: string,
  site: { id: string; timezone: string; seed: number; users: number; startMs: number; spanMs: number },
): Promise<SiteData> {
  const traffic = [...generateTraffic({
    users: site.users,
    visitsPerUser: 3,
    eventsPerVisit: 5,
    startMs: site.startMs,
    spanMs: site.spanMs,
    duplicateRate: 0.03,
    disorderMs: 50 * 60_000,
    seed: site.seed,
    // The same user ids on every site: a user key of one site is not the same visitor on another.
    idPrefix: 'u-',
  })];
  const stream = simulateWorker(chunks(traffic, 25), site.startMs + site.spanMs + 86_400_000);
  for (const [i, rows] of stream.batches.entries()) {
    await insertRows(client, `${database}.sessions`, rows.map((r) => ({ ...r, site: site.id })), `${site.id}-flush-${i}`);
  }
  await insertEvents(client, database, site.id, stream.events);
  const keyEvents = new Map<string, number[]>();
  for (const e of stream.events) {
    if (e.key_event === 1) keyEvents.set(e.user_key, [...(keyEvents.get(e.user_key) ?? []), e.timestamp]);
  }
  const events = [...new Map(stream.events.map((e) => [`${e.user_key}\0${e.event_id}`, e])).values()];
  return { id: site.id, timezone: site.timezone, current: stream.current, keyEvents, events };
}

export async function insertEvents(client: ClickHouseClient, database: string, site: string, events: readonly EventRow[]): Promise<void> {
  const rows = events.map((e) => ({
    site,
    event_id: e.event_id,
    user_key: e.user_key,
    anonymous_id: e.anonymous_id,
    user_id: e.user_id,
    timestamp: new Date(e.timestamp).toISOString(),
    type: e.type,
    channel: e.channel,
    key_event: e.key_event,
    raw: typeof e.raw === 'string' ? e.raw : Buffer.from(e.raw).toString('utf8'),
  }));
  for (const part of chunks(rows, 5000)) await insertRows(client, `${database}.events`, part);
}

export interface Totals {
  visitors: number;
  visits: number;
  pageviews: number;
  bounces: number;
  engaged: number;
  durationMs: number;
  events: number;
  conversions: number;
}

/** The day (in `timezone`) a session belongs to: the one it started on. */
export function dayOf(row: SessionRow, timezone: string): string {
  return todayIn(timezone, Date.parse(row.started_at));
}

export function converts(row: SessionRow, keyEvents: Map<string, number[]>): boolean {
  const start = Date.parse(row.started_at);
  const end = Date.parse(row.ended_at);
  return (keyEvents.get(row.user_key) ?? []).some((t) => t >= start && t <= end);
}

/** Totals of the sessions `rows`, grouped by `groupOf` ("" for one group). */
export function totalsBy(rows: readonly SessionRow[], keyEvents: Map<string, number[]>, groupOf: (row: SessionRow) => string): Map<string, Totals> {
  const groups = new Map<string, Totals & { users: Set<string> }>();
  for (const row of rows) {
    const key = groupOf(row);
    let t = groups.get(key);
    if (!t) {
      t = { visitors: 0, visits: 0, pageviews: 0, bounces: 0, engaged: 0, durationMs: 0, events: 0, conversions: 0, users: new Set() };
      groups.set(key, t);
    }
    t.users.add(row.user_key);
    t.visits += 1;
    t.pageviews += row.views;
    t.bounces += row.is_bounce;
    t.engaged += row.is_engaged;
    t.durationMs += row.duration_ms;
    t.events += row.events;
    if (converts(row, keyEvents)) t.conversions += 1;
  }
  const out = new Map<string, Totals>();
  for (const [key, { users, ...t }] of groups) out.set(key, { ...t, visitors: users.size });
  return out;
}

/** The Stats API's metric values for totals (before its rounding). */
export function metricsOf(t: Totals): Record<string, number> {
  const per = (n: number) => (t.visits === 0 ? 0 : n / t.visits);
  return {
    visitors: t.visitors,
    visits: t.visits,
    pageviews: t.pageviews,
    views_per_visit: per(t.pageviews),
    bounce_rate: 100 * per(t.bounces),
    visit_duration: per(t.durationMs) / 1000,
    events: t.events,
    conversion_rate: 100 * per(t.conversions),
    engaged_rate: 100 * per(t.engaged),
    conversions: t.conversions,
  };
}

export const ALL_METRICS = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration', 'events', 'conversion_rate', 'engaged_rate', 'conversions'];

/** Expects `actual` (as the API rounds: two decimals, seconds whole) to be `expected`. */
export function expectMetrics(actual: number[], expected: Record<string, number>, metrics: readonly string[] = ALL_METRICS): void {
  const got: Record<string, number> = {};
  const want: Record<string, number> = {};
  metrics.forEach((name, i) => {
    got[name] = actual[i] as number;
    const value = expected[name] as number;
    // Within the rounding: whole seconds for the duration, two decimals for the rest.
    want[name] = Math.abs((actual[i] as number) - value) <= (name === 'visit_duration' ? 0.5 : 0.005 + 1e-9) ? (actual[i] as number) : value;
  });
  expect(got).toEqual(want);
}
