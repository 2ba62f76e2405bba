/**
 * Calendar arithmetic for the pages, in a site's time zone: which days a period covers, the
 * previous period of equal length, the chart's buckets and which of them is still running.
 * Days are plain YYYY-MM-DD strings (a calendar day, not an instant); "now" comes in as an
 * argument, so all of this is pure.
 */
import type { Interval, ViewState } from './view-state';

export interface DayRange {
  /** First day, inclusive. */
  from: string;
  /** Last day, inclusive. */
  to: string;
}

const DAY_MS = 86_400_000;

function dayNumber(day: string): number {
  return Date.parse(`${day}T00:00:00Z`) / DAY_MS;
}

function dayOf(number: number): string {
  return new Date(number * DAY_MS).toISOString().slice(0, 10);
}

export function addDays(day: string, days: number): string {
  return dayOf(dayNumber(day) + days);
}

export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from) + 1;
}

/** The wall-clock date and hour of `now` in `timeZone`. */
export function localNow(now: Date, timeZone: string): { day: string; hour: number } {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(now);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  return { day: `${get('year')}-${get('month')}-${get('day')}`, hour: Number(get('hour')) };
}

function monthStart(day: string): string {
  return `${day.slice(0, 7)}-01`;
}

function monthEnd(day: string): string {
  const [year, month] = day.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
}

function addMonths(day: string, months: number): string {
  const [year, month] = day.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(year, month - 1 + months, 1)).toISOString().slice(0, 10);
}

/** The days a view covers; `today` is the site's current day. */
export function rangeOf(state: ViewState, today: string): DayRange {
  switch (state.period) {
    case 'day': {
      const day = state.date ?? today;
      return { from: day, to: day };
    }
    case '7d':
      return { from: addDays(today, -6), to: today };
    case '30d':
      return { from: addDays(today, -29), to: today };
    case 'month': {
      const day = state.date ?? today;
      return { from: monthStart(day), to: monthEnd(day) };
    }
    case '12mo':
      return { from: addMonths(today, -11), to: monthEnd(today) };
    case 'custom':
      return { from: state.from ?? today, to: state.to ?? today };
  }
}

/** The period of equal length that ends the day before `range` starts. */
export function previousRange(range: DayRange): DayRange {
  const length = daysBetween(range.from, range.to);
  return { from: addDays(range.from, -length), to: addDays(range.from, -1) };
}

/** The chart's default bucket for a range: hours for a day, months for a year, else days. */
export function defaultInterval(range: DayRange): Interval {
  const days = daysBetween(range.from, range.to);
  if (days === 1) return 'hour';
  if (days > 95) return 'month';
  return 'day';
}

/** Intervals that make sense for a range (an hourly chart of a year would be unreadable). */
export function intervalsFor(range: DayRange): Interval[] {
  const days = daysBetween(range.from, range.to);
  if (days === 1) return ['hour'];
  if (days <= 7) return ['hour', 'day'];
  if (days <= 95) return ['day', 'week', 'month'];
  return ['week', 'month'];
}

/**
 * Every bucket's label, as the Stats API names time buckets: "YYYY-MM-DD HH:00:00" by hour,
 * "YYYY-MM-DD" for days, for weeks (the Monday that starts each, the first one clamped to the
 * range) and for months (the 1st, the first clamped likewise).
 */
export function bucketsOf(range: DayRange, interval: Interval): string[] {
  const buckets: string[] = [];
  if (interval === 'hour') {
    for (let day = range.from; day <= range.to; day = addDays(day, 1)) {
      for (let hour = 0; hour < 24; hour++) buckets.push(`${day} ${String(hour).padStart(2, '0')}:00:00`);
    }
    return buckets;
  }
  for (let day = range.from; day <= range.to; day = addDays(day, 1)) {
    const start = bucketStart(day, interval);
    const label = start < range.from ? range.from : start;
    if (buckets[buckets.length - 1] !== label) buckets.push(label);
  }
  return buckets;
}

/** The label of the bucket holding `day` (at `hour` for hourly buckets). */
export function bucketOf(day: string, hour: number, interval: Interval, range: DayRange): string {
  if (interval === 'hour') return `${day} ${String(hour).padStart(2, '0')}:00:00`;
  const start = bucketStart(day, interval);
  return start < range.from ? range.from : start;
}

function bucketStart(day: string, interval: Exclude<Interval, 'hour'>): string {
  if (interval === 'day') return day;
  if (interval === 'month') return monthStart(day);
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday = 0
  return addDays(day, -weekday);
}

/** The key a Stats API time dimension value is matched to a bucket by (formats vary in precision). */
export function bucketKey(value: string, interval: Interval): string {
  return interval === 'hour' ? value.replace('T', ' ').slice(0, 13) : value.slice(0, 10);
}
