/**
 * The one query builder (pure: a validated query in, SQL text and its parameters out). Every
 * figure of the pages, the Stats API and CSV export comes from here; metrics and dimensions are
 * the data of definitions.ts.
 *
 * Shape of the SQL, always one statement over the site's part of `sessions`, without FINAL:
 *
 *   SELECT <dimensions>, <group totals>, <metrics>
 *   FROM (SELECT <dimensions>, <user key hash>, <sign-weighted sums>   -- only when visitors are
 *         FROM sessions WHERE site = … AND started_at in range AND …   -- asked for: a user key
 *         GROUP BY <dimensions>, <user key hash>)                     -- counts in a group when
 *   GROUP BY <dimensions> HAVING sessions > 0                          -- its net sessions > 0
 *
 * Without visitors the inner level is left out and the sums are the group totals. A cancelled
 * state and its cancel row share every column, so filters and groups never split them.
 *
 * Conversions and event dimensions (event:name, event:goal, event:page) join the site's events
 * of the range to the sessions by user key (sourceSql): each session row then carries its own
 * events' values, and a cancelled state carries the same ones as its cancel row. The person
 * metrics have a query of their own (people-sql.ts).
 */
import type { DayRange, TimeGrain } from './date-range';
import { addDays } from './date-range';
import { CHANNEL_MAP_SQL, DIMENSIONS, EVENT_DIMENSIONS, METRICS, SUMS, type SumName } from './definitions';
import { buildPeopleSql, isPeopleQuery } from './people-sql';
import type { Filter, FilterOperator, StatsQuery } from './query-types';

export interface BuiltQuery {
  sql: string;
  params: Record<string, unknown>;
  /** Output column of each requested dimension and metric, in the query's order. */
  dimensionColumns: string[];
  metricColumns: string[];
}

export interface BuildContext {
  database: string;
  site: string;
  timezone: string;
  range: DayRange;
  /** Grain of the `time` dimension when the query names plain `time`. */
  autoGrain: TimeGrain;
}

const TIME_SQL: Record<TimeGrain, string> = {
  hour: "formatDateTime(toStartOfHour(toTimeZone(started_at, {tz:String})), '%Y-%m-%d %H:00:00')",
  day: 'toString(toDate(started_at, {tz:String}))',
  week: 'toString(toMonday(toDate(started_at, {tz:String})))',
  month: 'toString(toStartOfMonth(toDate(started_at, {tz:String})))',
};

export function timeGrainOf(dimension: string, autoGrain: TimeGrain): TimeGrain | null {
  if (dimension === 'time') return autoGrain;
  const match = /^time:(hour|day|week|month)$/.exec(dimension);
  return match ? (match[1] as TimeGrain) : null;
}

export function dimensionSql(dimension: string, autoGrain: TimeGrain): string {
  const grain = timeGrainOf(dimension, autoGrain);
  if (grain) return TIME_SQL[grain];
  // A session holds several values of an event dimension: it counts once in each.
  if (EVENT_DIMENSIONS[dimension]) return `arrayJoin(arrayDistinct(${sessionEventValues(dimension)}))`;
  const definition = DIMENSIONS[dimension];
  if (!definition) throw new Error(`unknown dimension ${dimension} (the parser should have refused it)`);
  return definition.sql;
}

/** Prefix of the joined columns of an event dimension's values: `event:page` → `ev_page`. */
function eventColumns(dimension: string): string {
  return `ev_${dimension.slice('event:'.length)}`;
}

/**
 * The values of an event dimension of a session's own events, one per event (repeated when
 * events repeat a value): those of its user key between its first and its last event.
 */
export function sessionEventValues(dimension: string): string {
  const ev = eventColumns(dimension);
  return `arrayFilter((v, t) -> t >= started_at AND t <= ended_at, ${ev}_values, ${ev}_times)`;
}

const SITE_AND_RANGE = [
  'site = {site:String}',
  'started_at >= toDateTime64({from:String}, 3, {tz:String})',
  'started_at < toDateTime64({to:String}, 3, {tz:String})',
];

/** The WHERE clause of the site, the range and the filters, with its parameters. */
export function whereClause(context: BuildContext, filters: readonly Filter[], params: Record<string, unknown>): string {
  params.site = context.site;
  params.tz = context.timezone;
  params.from = `${context.range.from} 00:00:00`;
  params.to = `${addDays(context.range.to, 1)} 00:00:00`;
  const parts = [...SITE_AND_RANGE];
  for (const filter of filters) parts.push(filterSql(filter, context, params));
  return parts.join('\n  AND ');
}

/** Every dimension a query names, in its dimensions and (nested) filters. */
function namedDimensions(query: StatsQuery): string[] {
  const names = [...query.dimensions];
  const walk = (filter: Filter): void => {
    if (filter[0] === 'and' || filter[0] === 'or') (filter[1] as Filter[]).forEach(walk);
    else if (filter[0] === 'not') walk(filter[1] as Filter);
    else names.push(filter[1] as string);
  };
  query.filters.forEach(walk);
  return names;
}

function filterSql(filter: Filter, context: BuildContext, params: Record<string, unknown>): string {
  if (filter[0] === 'and' || filter[0] === 'or') {
    const [operator, children] = filter;
    return `(${children.map((child) => filterSql(child, context, params)).join(` ${operator.toUpperCase()} `)})`;
  }
  if (filter[0] === 'not') return `NOT (${filterSql(filter[1], context, params)})`;
  const [operator, dimension, clauses, modifiers] = filter as [FilterOperator, string, string[], { case_sensitive?: boolean }?];
  const name = `f${Object.keys(params).filter((k) => /^f\d+$/.test(k)).length}`;
  const caseSensitive = modifiers?.case_sensitive !== false;
  params[name] = caseSensitive ? clauses : clauses.map((c) => c.toLowerCase());
  const list = `{${name}:Array(String)}`;
  const positive = POSITIVE_OF[operator];
  const match = EVENT_DIMENSIONS[dimension]
    ? eventMatchSql(positive, sessionEventValues(dimension), list, caseSensitive)
    : valueMatchSql(positive, dimensionSql(dimension, context.autoGrain), list, caseSensitive);
  return positive === operator ? match : `NOT ${match}`;
}

/** Each operator's positive form: a negated one (`is_not`, …) is NOT of it. */
const POSITIVE_OF: Record<FilterOperator, 'is' | 'contains' | 'matches'> = {
  is: 'is',
  is_not: 'is',
  contains: 'contains',
  contains_not: 'contains',
  matches: 'matches',
  matches_not: 'matches',
};

function valueMatchSql(operator: 'is' | 'contains' | 'matches', expr: string, list: string, caseSensitive: boolean): string {
  const value = caseSensitive ? expr : `lowerUTF8(${expr})`;
  switch (operator) {
    case 'is':
      return `has(${list}, ${value})`;
    case 'contains':
      return `multiSearchAny(${value}, ${list})`;
    case 'matches':
      return `arrayExists(p -> match(${expr}, ${caseSensitive ? 'p' : "concat('(?i)', p)"}), ${list})`;
  }
}

/**
 * An event filter: a session passes `is`, `contains` and `matches` when one of its events has a
 * matching value, and their negations when none has (it did not do X).
 */
function eventMatchSql(operator: 'is' | 'contains' | 'matches', values: string, list: string, caseSensitive: boolean): string {
  const each = caseSensitive ? values : `arrayMap(x -> lowerUTF8(x), ${values})`;
  const pattern = caseSensitive ? 'p' : "concat('(?i)', p)";
  switch (operator) {
    case 'is':
      return `hasAny(${each}, ${list})`;
    case 'contains':
      return `arrayExists(x -> multiSearchAny(x, ${list}), ${each})`;
    case 'matches':
      return `arrayExists(x -> arrayExists(p -> match(x, ${pattern}), ${list}), ${values})`;
  }
}

/** The event dimensions a query names (as dimensions or in filters), once each. */
export function namedEventDimensions(query: StatsQuery): string[] {
  return [...new Set(namedDimensions(query).filter((d) => EVENT_DIMENSIONS[d]))];
}

/**
 * Sessions of the site, each with the times of its user key's key events (for conversions) and,
 * per event dimension named, the times and values of its user key's events. Both joins are by
 * user key; each session then keeps the events between its first and its last event.
 */
export function sourceSql(database: string, needsKeyEvents: boolean, eventDimensions: readonly string[] = []): string {
  let source = `${database}.sessions`;
  if (needsKeyEvents) {
    // Key events are few; a session converts when one of its user key falls between its first
    // and its last event. A key event can only be in a session of the range from `from` on.
    source += `
LEFT JOIN (
  SELECT user_key AS key_user_key, groupArray(timestamp) AS key_event_times
  FROM ${database}.events
  WHERE site = {site:String} AND key_event = 1 AND timestamp >= toDateTime64({from:String}, 3, {tz:String})
  GROUP BY key_user_key
) AS key_events ON user_key = key_user_key`;
  }
  for (const dimension of eventDimensions) {
    const definition = EVENT_DIMENSIONS[dimension];
    if (!definition) throw new Error(`unknown event dimension ${dimension}`);
    const ev = eventColumns(dimension);
    // Only the events that can fall in a session of the range: from its first day to the last
    // end of those sessions. `events` is a ReplacingMergeTree read without FINAL, so copies of
    // one event not yet merged are made one by grouping on its sorting key.
    source += `
LEFT JOIN (
  SELECT user_key AS ${ev}_user_key, groupArray(timestamp) AS ${ev}_times, groupArray(value) AS ${ev}_values
  FROM (
    SELECT user_key, timestamp, event_id, any(${definition.value}) AS value
    FROM ${database}.events
    WHERE site = {site:String} AND ${definition.where}
      AND timestamp >= toDateTime64({from:String}, 3, {tz:String})
      AND timestamp <= (SELECT max(ended_at) FROM ${database}.sessions WHERE ${SITE_AND_RANGE.join(' AND ')})
    GROUP BY user_key, timestamp, event_id
  )
  GROUP BY user_key
) AS ${ev} ON user_key = ${ev}_user_key`;
  }
  return source;
}

export function buildStatsSql(query: StatsQuery, context: BuildContext, options: { totalRows?: boolean } = {}): BuiltQuery {
  if (isPeopleQuery(query)) return buildPeopleSql(query, context, options);
  const params: Record<string, unknown> = {};
  const metrics = query.metrics.map((name) => METRICS[name] ?? fail(`unknown metric ${name}`));
  const sums = new Set<SumName>(['n_visits']);
  for (const metric of metrics) for (const sum of metric.sums) sums.add(sum);
  const perUser = metrics.some((m) => m.perUser);
  const dims = query.dimensions.map((d, i) => ({ alias: `d${i}`, sql: dimensionSql(d, context.autoGrain) }));
  const where = whereClause(context, query.filters, params);
  const source = sourceSql(context.database, sums.has('n_conversions'), namedEventDimensions(query));
  const sumSql = sumsFor(query);
  const dimSelect = dims.map((d) => `${d.sql} AS ${d.alias}`);
  const groupKeys = dims.map((d) => d.alias);

  let select: string[];
  let from: string;
  if (perUser) {
    // Grouped by a 64-bit hash of the user key, not the string: the same groups (two of a
    // site's keys share a hash with a chance of about n²/2⁶⁵, 1 in 10⁷ for 2 million keys)
    // at about half the cost of hashing and comparing strings.
    const inner = [...dimSelect, 'cityHash64(user_key) AS user_hash', ...[...sums].map((s) => `${sumSql[s]} AS ${s}`)];
    from = `(\n  SELECT ${inner.join(', ')}\n  FROM ${source}\n  WHERE ${where}\n  GROUP BY ${[...groupKeys, 'user_hash'].join(', ')}\n)`;
    select = [...groupKeys, 'countIf(n_visits > 0) AS visitors_', ...[...sums].map((s) => `sum(${s}) AS ${s}_`)];
  } else {
    from = `${source}\nWHERE ${where}`;
    select = [...dimSelect, ...[...sums].map((s) => `${sumSql[s]} AS ${s}_`)];
  }
  const metricColumns = metrics.map((_, i) => `m${i}`);
  select.push(...metrics.map((m, i) => `${m.sql} AS m${i}`));
  if (options.totalRows) select.push('count() OVER () AS total_rows_');

  const prelude = namedDimensions(query).some((d) => DIMENSIONS[d]?.needsChannelMap)
    ? `WITH ${CHANNEL_MAP_SQL(context.database, SITE_AND_RANGE.join(' AND '))}`
    : '';
  const sql = [
    prelude,
    `SELECT ${select.join(', ')}`,
    `FROM ${from}`,
    groupKeys.length > 0 ? `GROUP BY ${groupKeys.join(', ')}` : '',
    // An aggregate without dimensions always has its one row (zeros when nothing matched).
    groupKeys.length > 0 ? 'HAVING n_visits_ > 0' : '',
    `ORDER BY ${orderBy(query, groupKeys, metricColumns, context.autoGrain).join(', ')}`,
    'LIMIT {limit:UInt32} OFFSET {offset:UInt32}',
  ]
    .filter(Boolean)
    .join('\n');
  params.limit = query.pagination.limit;
  params.offset = query.pagination.offset;
  return { sql, params, dimensionColumns: groupKeys, metricColumns };
}

/**
 * The sums of a query: in a breakdown by an event dimension, `events` and `pageviews` count the
 * row's own events and views in each session (a session's other events are not the row's).
 */
function sumsFor(query: StatsQuery): Record<SumName, string> {
  const sums: Record<SumName, string> = { ...SUMS };
  const index = query.dimensions.findIndex((d) => EVENT_DIMENSIONS[d]);
  if (index < 0) return sums;
  const dimension = query.dimensions[index] as string;
  const alias = `d${index}`;
  const count = `countEqual(${sessionEventValues(dimension)}, ${alias})`;
  sums.n_events = `sum(sign * toInt64(${count}))`;
  sums.n_views = `sum(sign * toInt64(if(${(EVENT_DIMENSIONS[dimension] as { isView: (v: string) => string }).isView(alias)}, ${count}, 0)))`;
  return sums;
}

/**
 * The query's order_by, then Plausible's default (time ascending when there is a time
 * dimension, else the first metric descending), then every dimension ascending so that equal
 * rows always come in the same order (pages must not reshuffle between requests).
 */
function orderBy(query: StatsQuery, dimColumns: string[], metricColumns: string[], autoGrain: TimeGrain): string[] {
  const columnOf = (name: string) => {
    const m = query.metrics.indexOf(name);
    if (m >= 0) return metricColumns[m] as string;
    return dimColumns[query.dimensions.indexOf(name)] as string;
  };
  const terms: string[] = [];
  for (const [name, direction] of query.order_by ?? []) terms.push(`${columnOf(name)} ${direction.toUpperCase()}`);
  const time = query.dimensions.findIndex((d) => timeGrainOf(d, autoGrain) !== null);
  if (!query.order_by) {
    if (time >= 0) terms.push(`${dimColumns[time]} ASC`);
    else if (metricColumns.length > 0) terms.push(`${metricColumns[0]} DESC`);
  }
  for (const column of dimColumns) if (!terms.some((t) => t.startsWith(`${column} `))) terms.push(`${column} ASC`);
  return terms.length > 0 ? terms : ['tuple()'];
}

function fail(message: string): never {
  throw new Error(message);
}
