/**
 * The Stats API: `parseStatsQuery` checks a request body (Plausible's Stats API v2 shape) and
 * names the first thing it does not know; `runStatsQuery` answers it from ClickHouse through the
 * one query builder (query-sql.ts). The pages and CSV export call these too.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { InvalidStatsQueryError, SiteNotFoundError } from '../../errors';
import type { SiteConfig } from '../config';
import { autoGrain, PERIODS, resolveDateRange, timeLabels, todayIn, type DayRange } from './date-range';
import { DIMENSIONS, EVENT_DIMENSIONS, METRICS, PERSON_METRICS, UNSUPPORTED_DIMENSIONS } from './definitions';
import { buildStatsSql, timeGrainOf } from './query-sql';
import { FILTER_OPERATORS, type Filter, type FilterOperator, type StatsQuery, type StatsResponse } from './query-types';

export type { Filter, StatsQuery, StatsResponse, StatsRow } from './query-types';

/** Rows one query returns at most (Plausible's limit too). */
export const MAX_LIMIT = 10_000;

const bodySchema = z.strictObject({
  site_id: z.string().min(1),
  metrics: z.array(z.string()).min(1),
  date_range: z.union([z.enum(PERIODS), z.tuple([z.string(), z.string()])]),
  dimensions: z.array(z.string()).default([]),
  filters: z.array(z.unknown()).default([]),
  order_by: z.array(z.tuple([z.string(), z.enum(['asc', 'desc'])])).optional(),
  pagination: z
    .strictObject({ limit: z.number().int().min(1).max(MAX_LIMIT).default(MAX_LIMIT), offset: z.number().int().min(0).default(0) })
    .default({ limit: MAX_LIMIT, offset: 0 }),
  include: z
    .strictObject({ time_labels: z.boolean().default(false), total_rows: z.boolean().default(false), imports: z.boolean().default(false) })
    .default({ time_labels: false, total_rows: false, imports: false }),
});

const TIME_DIMENSIONS = ['time', 'time:hour', 'time:day', 'time:week', 'time:month'];

/** A body as it came; throws InvalidStatsQueryError naming the first problem. */
export function parseStatsQuery(body: unknown): StatsQuery {
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const where = issue.path.join('.') || 'body';
    const keys = issue.code === 'unrecognized_keys' ? ` ${issue.keys.map((k) => `'${k}'`).join(', ')}` : '';
    throw new InvalidStatsQueryError(String(issue.path[0] ?? 'body'), `Invalid ${where}:${keys} ${issue.message}`.replace(/\s+/g, ' ').trim());
  }
  const q = parsed.data;
  // Custom dates are checked here (the relative periods need the site's today, at run time).
  if (Array.isArray(q.date_range)) resolveDateRange(q.date_range as [string, string], '1970-01-01');
  for (const metric of q.metrics) {
    if (!METRICS[metric] && !PERSON_METRICS[metric]) {
      throw new InvalidStatsQueryError('metrics', `Unknown metric '${metric}'. Known: ${[...Object.keys(METRICS), ...Object.keys(PERSON_METRICS)].join(', ')}`);
    }
  }
  if (new Set(q.metrics).size !== q.metrics.length) throw new InvalidStatsQueryError('metrics', 'Invalid metrics: a metric is listed twice');
  for (const dimension of q.dimensions) checkDimension(dimension, 'dimensions', true);
  if (new Set(q.dimensions).size !== q.dimensions.length) throw new InvalidStatsQueryError('dimensions', 'Invalid dimensions: a dimension is listed twice');
  checkPersonMetrics(q.metrics, q.dimensions);
  // Two event dimensions would pair every value of one with every value of the other in a session.
  if (q.dimensions.filter((d) => EVENT_DIMENSIONS[d]).length > 1) {
    throw new InvalidStatsQueryError('dimensions', 'Invalid dimensions: at most one event dimension (event:name, event:goal, event:page)');
  }
  if (q.dimensions.filter((d) => TIME_DIMENSIONS.includes(d)).length > 1) {
    throw new InvalidStatsQueryError('dimensions', 'Invalid dimensions: at most one time dimension');
  }
  const filters = q.filters.map((f, i) => parseFilter(f, `filters.${i}`));
  for (const [name] of q.order_by ?? []) {
    if (!q.metrics.includes(name) && !q.dimensions.includes(name)) {
      throw new InvalidStatsQueryError('order_by', `Invalid order_by entry '${name}': not a queried metric or dimension`);
    }
  }
  if (q.include.time_labels && !q.dimensions.some((d) => TIME_DIMENSIONS.includes(d))) {
    throw new InvalidStatsQueryError('include', 'Invalid include.time_labels: requires a time dimension');
  }
  return {
    site_id: q.site_id,
    metrics: q.metrics,
    date_range: q.date_range as StatsQuery['date_range'],
    dimensions: q.dimensions,
    filters,
    order_by: q.order_by,
    pagination: q.pagination,
    include: q.include,
  };
}

/** Person metrics have their own query: asked together, without session metrics or dimensions. */
function checkPersonMetrics(metrics: readonly string[], dimensions: readonly string[]): void {
  const people = metrics.filter((m) => PERSON_METRICS[m]);
  if (people.length === 0) return;
  if (people.length < metrics.length) {
    const other = metrics.find((m) => !PERSON_METRICS[m]) as string;
    throw new InvalidStatsQueryError('metrics', `Invalid metrics: person metrics (${people.join(', ')}) cannot be asked with '${other}'; ask them in a query of their own`);
  }
  if (dimensions.length > 0) {
    throw new InvalidStatsQueryError('dimensions', `Invalid dimensions: person metrics (${people.join(', ')}) are asked without dimensions`);
  }
}

function checkDimension(name: string, field: string, timeAllowed: boolean): void {
  if (DIMENSIONS[name] || EVENT_DIMENSIONS[name] || (timeAllowed && TIME_DIMENSIONS.includes(name))) return;
  const why = UNSUPPORTED_DIMENSIONS[name] ?? (name.startsWith('event:props:') ? 'custom properties are not supported' : undefined);
  if (why) throw new InvalidStatsQueryError(field, `Unsupported ${field === 'dimensions' ? 'dimension' : 'filter dimension'} '${name}': ${why}`);
  throw new InvalidStatsQueryError(field, `Unknown ${field === 'dimensions' ? 'dimension' : 'filter dimension'} '${name}'`);
}

function parseFilter(raw: unknown, where: string): Filter {
  if (!Array.isArray(raw) || raw.length < 2) throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: ${JSON.stringify(raw)}`);
  const [operator] = raw as unknown[];
  if (operator === 'and' || operator === 'or') {
    const children = raw[1];
    if (raw.length !== 2 || !Array.isArray(children) || children.length === 0) {
      throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: '${operator}' takes a non-empty list of filters`);
    }
    return [operator, children.map((child, i) => parseFilter(child, `${where}.${i}`))];
  }
  if (operator === 'not') {
    if (raw.length !== 2) throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: 'not' takes one filter`);
    return ['not', parseFilter(raw[1], `${where}.1`)];
  }
  if (typeof operator !== 'string' || !(FILTER_OPERATORS as readonly string[]).includes(operator)) {
    throw new InvalidStatsQueryError('filters', `Unknown filter operator '${String(operator)}' in ${where}. Known: and, or, not, ${FILTER_OPERATORS.join(', ')}`);
  }
  const [, dimension, clauses, modifiers] = raw as [string, unknown, unknown, unknown];
  if (typeof dimension !== 'string') throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: the dimension must be a string`);
  checkDimension(dimension, 'filters', false);
  if (!Array.isArray(clauses) || clauses.length === 0 || !clauses.every((c) => typeof c === 'string' || typeof c === 'number')) {
    throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: clauses must be a non-empty list of strings`);
  }
  if (raw.length > 4) throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: too many parts`);
  let parsedModifiers: { case_sensitive?: boolean } | undefined;
  if (modifiers !== undefined) {
    const m = z.strictObject({ case_sensitive: z.boolean().optional() }).safeParse(modifiers);
    if (!m.success) throw new InvalidStatsQueryError('filters', `Invalid filter ${where}: the only modifier is case_sensitive (true or false)`);
    parsedModifiers = m.data;
  }
  const values = clauses.map(String);
  return parsedModifiers
    ? [operator as FilterOperator, dimension, values, parsedModifiers]
    : [operator as FilterOperator, dimension, values];
}

export interface StatsDeps {
  clickhouse: ClickHouseClient;
  database: string;
  /** Every site the dashboard serves (access is checked before this is called). */
  sites: readonly SiteConfig[];
  /** Clock, ms; Date.now by default. */
  now?: () => number;
}

/** The site, or SiteNotFoundError: the same answer as for a site the viewer may not see. */
export function siteOf(sites: readonly SiteConfig[], id: string): SiteConfig {
  const site = sites.find((s) => s.id === id);
  if (!site) throw new SiteNotFoundError(id);
  return site;
}

/** The days `query.date_range` covers for its site (reads the site's first day for `all`). */
export async function resolveQueryRange(deps: StatsDeps, site: SiteConfig, dateRange: StatsQuery['date_range']): Promise<DayRange> {
  const today = todayIn(site.timezone, (deps.now ?? Date.now)());
  const firstDay = dateRange === 'all' ? await firstDayOf(deps, site) : null;
  return resolveDateRange(dateRange, today, firstDay);
}

async function firstDayOf(deps: StatsDeps, site: SiteConfig): Promise<string | null> {
  const result = await deps.clickhouse.query({
    query: `SELECT count() AS n, toString(toDate(min(started_at), {tz:String})) AS first FROM ${deps.database}.sessions WHERE site = {site:String} AND sign = 1`,
    query_params: { site: site.id, tz: site.timezone },
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ n: string | number; first: string }>();
  return row && Number(row.n) > 0 ? row.first : null;
}

export async function runStatsQuery(deps: StatsDeps, query: StatsQuery): Promise<StatsResponse> {
  const site = siteOf(deps.sites, query.site_id);
  const range = await resolveQueryRange(deps, site, query.date_range);
  const grain = autoGrain(range);
  const built = buildStatsSql(query, { database: deps.database, site: site.id, timezone: site.timezone, range, autoGrain: grain }, { totalRows: query.include.total_rows });
  const result = await deps.clickhouse.query({
    query: built.sql,
    query_params: built.params,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  const records = await result.json<Record<string, string | number>>();
  const results = records.map((r) => ({
    metrics: built.metricColumns.map((c) => Number(r[c])),
    dimensions: built.dimensionColumns.map((c) => String(r[c])),
  }));
  const meta: StatsResponse['meta'] = {};
  if (query.include.time_labels) {
    const timeDimension = query.dimensions.find((d) => timeGrainOf(d, grain) !== null) as string;
    meta.time_labels = timeLabels(range, timeGrainOf(timeDimension, grain) as NonNullable<ReturnType<typeof timeGrainOf>>);
  }
  if (query.include.total_rows) meta.total_rows = records.length > 0 ? Number(records[0]?.total_rows_) : 0;
  if (query.include.imports) {
    meta.imports_included = false;
    meta.imports_warning = 'There is no imported data: every figure comes from collected events.';
  }
  return {
    results,
    meta,
    query: {
      site_id: site.id,
      metrics: query.metrics,
      date_range: [range.from, range.to],
      dimensions: query.dimensions,
      filters: query.filters,
      order_by: query.order_by,
      include: query.include,
      pagination: query.pagination,
      timezone: site.timezone,
    },
  };
}
