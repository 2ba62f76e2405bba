/**
 * The state of a site's page, all of it in the URL so a view can be bookmarked, shared and
 * reloaded: Plausible's dashboard URL form.
 *
 *   /<site>?period=7d&f=is,source,Google&f=is,country,DE&comparison=previous_period&metric=visits
 *
 * - `period`: day | 7d | 30d | month | 12mo | custom (with `from` and `to`, YYYY-MM-DD); `date`
 *   picks the day of `period=day` and the month of `period=month`.
 * - `f`: one filter each, `operator,key,value[,value…]`. Commas inside a value are sent as %2C, so
 *   the parameter is split on its raw commas before each part is decoded (as Plausible does).
 * - `comparison=previous_period` draws the previous period beside the chart.
 * - `metric`: the card the chart shows; `interval`: hour | day | week | month.
 * - `tab_<panel>`: the tab a panel shows (tabs are links, so each works without script).
 * Anything not understood is dropped, never echoed back unescaped.
 */

export const PERIODS = ['day', '7d', '30d', 'month', '12mo', 'custom'] as const;
export type Period = (typeof PERIODS)[number];
export const INTERVALS = ['hour', 'day', 'week', 'month'] as const;
export type Interval = (typeof INTERVALS)[number];
export const FILTER_OPERATORS = ['is', 'is_not', 'contains', 'contains_not'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/** URL filter keys (Plausible's names, plus entry_point, visitor_type and event) → Stats API dimensions. */
export const FILTER_KEYS: Readonly<Record<string, string>> = {
  channel: 'visit:channel',
  source: 'visit:source',
  utm_medium: 'visit:utm_medium',
  utm_campaign: 'visit:utm_campaign',
  page: 'event:page',
  entry_page: 'visit:entry_page',
  exit_page: 'visit:exit_page',
  country: 'visit:country',
  region: 'visit:region',
  city: 'visit:city',
  screen: 'visit:device',
  browser: 'visit:browser',
  os: 'visit:os',
  entry_point: 'visit:entry_point',
  visitor_type: 'visit:visitor_type',
  goal: 'event:goal',
  event: 'event:name',
};

export interface UrlFilter {
  operator: FilterOperator;
  key: string;
  values: string[];
}

export interface ViewState {
  period: Period;
  /** The day (period=day) or a day of the month (period=month) to show; absent: today. */
  date?: string;
  from?: string;
  to?: string;
  comparison: boolean;
  metric: string;
  interval?: Interval;
  filters: UrlFilter[];
  tabs: Readonly<Record<string, string>>;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function isValidDate(text: string | undefined): text is string {
  if (text === undefined || !DATE.test(text)) return false;
  const parsed = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(text);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return part;
  }
}

/** The raw `name=value` pairs of a query string, values still encoded. */
function rawPairs(search: string): [string, string][] {
  const text = search.startsWith('?') ? search.slice(1) : search;
  if (text === '') return [];
  return text.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? [decode(pair), ''] : [decode(pair.slice(0, eq)), pair.slice(eq + 1)];
  });
}

export function parseFilter(raw: string): UrlFilter | undefined {
  const [operator, key, ...values] = raw.split(',').map(decode);
  if (operator === undefined || key === undefined || values.length === 0) return undefined;
  if (!(FILTER_OPERATORS as readonly string[]).includes(operator)) return undefined;
  if (!Object.hasOwn(FILTER_KEYS, key)) return undefined;
  return { operator: operator as FilterOperator, key, values };
}

/** The state of the query string `search` (with or without its "?"). */
export function parseViewState(search: string, metrics: readonly string[], defaultMetric: string): ViewState {
  const single = new Map<string, string>();
  const filters: UrlFilter[] = [];
  const tabs: Record<string, string> = {};
  for (const [name, value] of rawPairs(search)) {
    if (name === 'f') {
      // Without a raw comma the whole text was encoded once more (a form's GET): undo that first.
      const filter = parseFilter(value.includes(',') ? value : decode(value));
      // One filter per key and operator: a later one replaces an earlier one.
      if (filter) {
        const same = filters.findIndex((f) => f.key === filter.key && f.operator === filter.operator);
        if (same >= 0) filters.splice(same, 1);
        filters.push(filter);
      }
    } else if (name.startsWith('tab_')) {
      tabs[name.slice(4)] = decode(value);
    } else {
      single.set(name, decode(value));
    }
  }
  const wantPeriod = single.get('period') ?? '';
  let period: Period = (PERIODS as readonly string[]).includes(wantPeriod) ? (wantPeriod as Period) : '7d';
  const from = single.get('from');
  const to = single.get('to');
  if (period === 'custom' && !(isValidDate(from) && isValidDate(to) && from <= to)) period = '7d';
  const date = single.get('date');
  const metric = single.get('metric') ?? '';
  const interval = single.get('interval') ?? '';
  const state: ViewState = {
    period,
    comparison: single.get('comparison') === 'previous_period',
    metric: metrics.includes(metric) ? metric : defaultMetric,
    filters,
    tabs,
  };
  if (period === 'custom') {
    state.from = from;
    state.to = to;
  }
  if ((period === 'day' || period === 'month') && isValidDate(date)) state.date = date;
  if ((INTERVALS as readonly string[]).includes(interval)) state.interval = interval as Interval;
  return state;
}

/** `encodeURIComponent`, leaving the characters Plausible leaves readable in a filter value. */
function encodeFilterPart(part: string): string {
  return encodeURIComponent(part).replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%40/g, '@');
}

/** The query string (with "?", or "" when empty) of a state. */
export function searchOf(state: ViewState, defaultMetric: string): string {
  const pairs: string[] = [];
  const add = (name: string, value: string) => pairs.push(`${name}=${encodeURIComponent(value)}`);
  if (state.period !== '7d') add('period', state.period);
  if (state.date !== undefined) add('date', state.date);
  if (state.from !== undefined) add('from', state.from);
  if (state.to !== undefined) add('to', state.to);
  for (const f of state.filters) pairs.push(`f=${[f.operator, f.key, ...f.values].map(encodeFilterPart).join(',')}`);
  if (state.comparison) add('comparison', 'previous_period');
  if (state.metric !== defaultMetric) add('metric', state.metric);
  if (state.interval !== undefined) add('interval', state.interval);
  for (const [panel, tab] of Object.entries(state.tabs)) add(`tab_${panel}`, tab);
  return pairs.length === 0 ? '' : `?${pairs.join('&')}`;
}

/** The state with the filter `key is value` added (replacing any `is` filter on that key). */
export function withFilter(state: ViewState, key: string, value: string): ViewState {
  const filters = state.filters.filter((f) => !(f.key === key && f.operator === 'is'));
  return { ...state, filters: [...filters, { operator: 'is', key, values: [value] }] };
}

export function withoutFilter(state: ViewState, index: number): ViewState {
  return { ...state, filters: state.filters.filter((_, i) => i !== index) };
}

/** The Stats API filters of a state. */
export function statsFiltersOf(state: ViewState): [string, string, string[]][] {
  return state.filters.map((f) => [f.operator, FILTER_KEYS[f.key] as string, f.values]);
}
