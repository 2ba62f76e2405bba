/**
 * Everything one view of a site's page shows, fetched as small Stats API queries (one for the
 * cards, one for the previous period, one per chart line, one per panel shown), in parallel.
 * Pure apart from the `stats` function it is handed.
 */
import { CARD_METRIC_NAMES, PANELS, ROW_METRICS, activeTab, type Panel, type PanelTab } from './catalog';
import {
  addDays,
  bucketKey,
  bucketOf,
  bucketsOf,
  defaultInterval,
  intervalsFor,
  localNow,
  previousRange,
  rangeOf,
  type DayRange,
} from './date-range';
import { SessionizerError } from '../../errors';
import type { StatsQuery, StatsSource } from './stats-source';
import { statsFiltersOf, type Interval, type ViewState } from './view-state';

export const PANEL_ROWS = 10;

export interface BreakdownRow {
  name: string;
  visitors: number;
  visits: number;
}

export interface PanelData {
  panel: Panel;
  tab: PanelTab;
  /** For a people tab: groups of identified people, `visitors` holding people. */
  rows: BreakdownRow[];
  /** For a people tab: the identified people and the cross-device share (percent). */
  people?: PeopleFigures;
  /** Why the Stats API cannot answer this tab (a dimension it does not hold), if so. */
  unavailable?: string;
}

/** The Stats API refused the query as one it cannot answer (400), as opposed to failing. */
export function isUnanswerable(err: unknown): err is Error {
  return err instanceof SessionizerError && err.code === 'BAD_QUERY';
}

export interface ChartData {
  metric: string;
  interval: Interval;
  intervals: Interval[];
  labels: string[];
  values: number[];
  /** The previous period's values, bucket by bucket (when comparing). */
  previous?: number[];
  previousLabels?: string[];
  /** Index of the bucket still running (now falls in it), or -1. */
  incompleteIndex: number;
}

export interface SiteView {
  site: string;
  name: string;
  timeZone: string;
  state: ViewState;
  range: DayRange;
  previous: DayRange;
  cards: Record<string, number | null>;
  previousCards: Record<string, number | null>;
  chart: ChartData;
  panels: PanelData[];
}

export interface SiteViewInput {
  site: string;
  /** Shown as the page's title; the id by default. */
  name?: string;
  timeZone: string;
  state: ViewState;
  now: Date;
  stats: StatsSource;
}

function numberOf(value: number | null | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function baseQuery(input: SiteViewInput, range: DayRange, metrics: readonly string[]): StatsQuery {
  const query: StatsQuery = { site_id: input.site, metrics: [...metrics], date_range: [range.from, range.to] };
  const filters = statsFiltersOf(input.state);
  if (filters.length > 0) query.filters = filters;
  return query;
}

async function totals(input: SiteViewInput, range: DayRange): Promise<Record<string, number | null>> {
  const response = await input.stats(baseQuery(input, range, CARD_METRIC_NAMES));
  const metrics = response.results[0]?.metrics ?? [];
  return Object.fromEntries(CARD_METRIC_NAMES.map((name, i) => [name, metrics[i] ?? null]));
}

async function series(input: SiteViewInput, range: DayRange, metric: string, interval: Interval): Promise<{ labels: string[]; values: number[] }> {
  const response = await input.stats({ ...baseQuery(input, range, [metric]), dimensions: [`time:${interval}`] });
  const byKey = new Map(response.results.map((r) => [bucketKey(r.dimensions[0] ?? '', interval), numberOf(r.metrics[0])]));
  const labels = bucketsOf(range, interval);
  return { labels, values: labels.map((label) => byKey.get(bucketKey(label, interval)) ?? 0) };
}

/** The person metrics a people tab shows (Stats API names, asked in one query of their own). */
export const PERSON_METRICS = ['identified_people', 'identified_visits', 'cross_device_people', 'cross_device_visits', 'cross_device_share'] as const;

export interface PeopleFigures {
  identified: number;
  /** 100 × cross-device people / identified people, two decimals (0 without identified people). */
  crossDeviceShare: number;
}

export const SEVERAL_DEVICE_TYPES = 'Several device types';
export const ONE_DEVICE_TYPE = 'One device type';

/**
 * Identified people of the range and filters, in two rows: seen on several device types (the
 * cross-device people) and on one; each with its people and their sessions.
 */
export async function peopleRows(input: SiteViewInput, range: DayRange): Promise<{ rows: BreakdownRow[]; people: PeopleFigures }> {
  const response = await input.stats(baseQuery(input, range, PERSON_METRICS));
  const metric = (name: (typeof PERSON_METRICS)[number]) => numberOf(response.results[0]?.metrics[PERSON_METRICS.indexOf(name)]);
  const identified = metric('identified_people');
  const cross = metric('cross_device_people');
  const crossVisits = metric('cross_device_visits');
  const rows = identified === 0 ? [] : [
    { name: SEVERAL_DEVICE_TYPES, visitors: cross, visits: crossVisits },
    { name: ONE_DEVICE_TYPE, visitors: identified - cross, visits: metric('identified_visits') - crossVisits },
  ];
  return { rows, people: { identified, crossDeviceShare: metric('cross_device_share') } };
}

/** The data of one panel tab: a breakdown (top `limit` rows), or the people figures. */
export async function tabData(input: SiteViewInput, range: DayRange, tab: PanelTab, limit = PANEL_ROWS): Promise<Pick<PanelData, 'rows' | 'people'>> {
  if (tab.people) return peopleRows(input, range);
  return { rows: await breakdown(input, range, tab, limit) };
}

/** The rows of one panel tab: most visitors first. */
export async function breakdown(input: SiteViewInput, range: DayRange, tab: PanelTab, limit = PANEL_ROWS): Promise<BreakdownRow[]> {
  const response = await input.stats({
    ...baseQuery(input, range, ROW_METRICS),
    dimensions: [tab.dimension],
    order_by: [['visitors', 'desc'], ['visits', 'desc']],
    pagination: { limit },
  });
  return response.results.map((r) => ({ name: r.dimensions[0] ?? '', visitors: numberOf(r.metrics[0]), visits: numberOf(r.metrics[1]) }));
}

export async function loadSiteView(input: SiteViewInput): Promise<SiteView> {
  const { day: today, hour } = localNow(input.now, input.timeZone);
  const range = rangeOf(input.state, today);
  const previous = previousRange(range);
  const intervals = intervalsFor(range);
  const wanted = input.state.interval;
  const interval = wanted !== undefined && intervals.includes(wanted) ? wanted : defaultInterval(range);
  const metric = input.state.metric;
  const [cards, previousCards, current, before, panels] = await Promise.all([
    totals(input, range),
    totals(input, previous),
    series(input, range, metric, interval),
    input.state.comparison ? series(input, previous, metric, interval) : Promise.resolve(undefined),
    Promise.all(PANELS.map(async (panel) => {
      const tab = activeTab(panel, input.state.tabs);
      try {
        return { panel, tab, ...(await tabData(input, range, tab)) };
      } catch (err) {
        if (!isUnanswerable(err)) throw err;
        return { panel, tab, rows: [], unavailable: err.message };
      }
    })),
  ]);
  const running = today >= range.from && today <= range.to ? bucketOf(today, hour, interval, range) : undefined;
  const chart: ChartData = {
    metric,
    interval,
    intervals,
    labels: current.labels,
    values: current.values,
    incompleteIndex: running === undefined ? -1 : current.labels.indexOf(running),
  };
  if (before) {
    chart.previous = before.values;
    chart.previousLabels = before.labels;
  }
  return { site: input.site, name: input.name ?? input.site, timeZone: input.timeZone, state: input.state, range, previous, cards, previousCards, chart, panels };
}

/**
 * Sessions that started in the last 24 hours (the running hour and the 23 before it, in the
 * site's time zone), hour by hour, for the sites list: one query over yesterday and today.
 */
export async function lastDaySessions(stats: StatsSource, site: string, timeZone: string, now: Date): Promise<{ total: number; hourly: number[] }> {
  const { day: today, hour } = localNow(now, timeZone);
  const range = { from: addDays(today, -1), to: today };
  const response = await stats({ site_id: site, metrics: ['visits'], date_range: [range.from, range.to], dimensions: ['time:hour'] });
  const byKey = new Map(response.results.map((r) => [bucketKey(r.dimensions[0] ?? '', 'hour'), numberOf(r.metrics[0])]));
  const labels = bucketsOf(range, 'hour');
  const last = labels.indexOf(bucketOf(today, hour, 'hour', range));
  const hourly = labels.slice(last - 23, last + 1).map((label) => byKey.get(bucketKey(label, 'hour')) ?? 0);
  return { total: hourly.reduce((sum, n) => sum + n, 0), hourly };
}
