/**
 * A Stats API over sessions held in memory, for page tests: the metrics, dimensions and `is`
 * filters the pages ask for, computed the way the API defines them (visitors = distinct user
 * keys, a session counted on the day it started). Times are given in the site's local time.
 */
import type { StatsQuery, StatsResponse } from '../../../../src/dashboard/pages/stats-source';

export interface MemorySession {
  site: string;
  user: string;
  /** Local start, "YYYY-MM-DD HH:MM". */
  start: string;
  durationS: number;
  views: number;
  bounce?: boolean;
  engaged?: boolean;
  keyEvent?: string;
  returning?: boolean;
  /** The identified person of the session (absent: not identified); device type in dims['visit:device']. */
  person?: string;
  dims?: Partial<Record<string, string>>;
}

function dimensionOf(s: MemorySession, dimension: string): string {
  if (dimension === 'time:day') return s.start.slice(0, 10);
  if (dimension === 'time:hour') return `${s.start.slice(0, 13)}:00:00`;
  if (dimension === 'event:goal') return s.keyEvent ?? '';
  if (dimension === 'visit:visitor_type') return s.returning ? 'Returning' : 'New';
  return s.dims?.[dimension] ?? '';
}

function metricOf(group: MemorySession[], metric: string): number {
  const visits = group.length;
  const per = (n: number) => (visits === 0 ? 0 : n / visits);
  const users = (f: (s: MemorySession) => boolean) => new Set(group.filter(f).map((s) => s.user)).size;
  switch (metric) {
    case 'visitors': return users(() => true);
    case 'visits': return visits;
    case 'pageviews': return group.reduce((n, s) => n + s.views, 0);
    case 'views_per_visit': return per(group.reduce((n, s) => n + s.views, 0));
    case 'bounce_rate': return 100 * per(group.filter((s) => s.bounce).length);
    case 'engaged_rate': return 100 * per(group.filter((s) => s.engaged).length);
    case 'visit_duration': return per(group.reduce((n, s) => n + s.durationS, 0));
    case 'conversions': return group.filter((s) => s.keyEvent).length;
    default: return personMetricOf(group, metric);
  }
}

/** The person metrics: identified people, and those with two or more device types. */
function personMetricOf(group: MemorySession[], metric: string): number {
  const people = new Map<string, { visits: number; devices: Set<string> }>();
  for (const s of group) {
    if (s.person === undefined) continue;
    const p = people.get(s.person) ?? { visits: 0, devices: new Set<string>() };
    p.visits += 1;
    const device = s.dims?.['visit:device'] ?? '';
    if (device !== '') p.devices.add(device);
    people.set(s.person, p);
  }
  const all = [...people.values()];
  const cross = all.filter((p) => p.devices.size >= 2);
  switch (metric) {
    case 'identified_people': return all.length;
    case 'identified_visits': return all.reduce((n, p) => n + p.visits, 0);
    case 'cross_device_people': return cross.length;
    case 'cross_device_visits': return cross.reduce((n, p) => n + p.visits, 0);
    case 'cross_device_share': return all.length === 0 ? 0 : Math.round((10_000 * cross.length) / all.length) / 100;
    default: throw new Error(`unknown metric ${metric}`);
  }
}

export function memoryStats(sessions: readonly MemorySession[], log: StatsQuery[] = []) {
  return async (query: StatsQuery): Promise<StatsResponse> => {
    log.push(query);
    const [from, to] = Array.isArray(query.date_range) ? query.date_range : ['0000', '9999'];
    let rows = sessions.filter((s) => s.site === query.site_id && s.start.slice(0, 10) >= from.slice(0, 10) && s.start.slice(0, 10) <= to.slice(0, 10));
    for (const [op, dimension, values] of query.filters ?? []) {
      rows = rows.filter((s) => values.includes(dimensionOf(s, dimension)) === (op === 'is'));
    }
    const dimensions = query.dimensions ?? [];
    const groups = new Map<string, MemorySession[]>();
    for (const s of rows) {
      if (dimensions.includes('event:goal') && !s.keyEvent) continue;
      const key = JSON.stringify(dimensions.map((d) => dimensionOf(s, d)));
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    if (dimensions.length === 0 && groups.size === 0) groups.set('[]', []);
    let results = [...groups].map(([key, group]) => ({ dimensions: JSON.parse(key) as string[], metrics: query.metrics.map((m) => metricOf(group, m)) }));
    const orders = (query.order_by ?? []).map(([metric, direction]) => ({ i: query.metrics.indexOf(metric), sign: direction === 'desc' ? -1 : 1 }));
    results.sort((a, b) => {
      for (const { i, sign } of orders) {
        const d = ((a.metrics[i] ?? 0) - (b.metrics[i] ?? 0)) * sign;
        if (d !== 0) return d;
      }
      return (a.dimensions[0] ?? '').localeCompare(b.dimensions[0] ?? '');
    });
    if (query.pagination) results = results.slice(query.pagination.offset ?? 0, (query.pagination.offset ?? 0) + query.pagination.limit);
    return { results };
  };
}
