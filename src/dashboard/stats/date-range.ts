/**
 * Date ranges of the Stats API in a site's time zone, as calendar days (pure; no clock reads:
 * `now` is passed in). A range [from, to] is inclusive; a session belongs to the day, in the
 * site's zone, on which it started.
 */
import { InvalidStatsQueryError } from '../../errors';

export const PERIODS = ['day', '7d', '28d', '30d', '91d', 'month', '6mo', '12mo', 'year', 'all'] as const;
export type Period = (typeof PERIODS)[number];

export interface DayRange {
  /** First day, YYYY-MM-DD, inclusive. */
  from: string;
  /** Last day, YYYY-MM-DD, inclusive. */
  to: string;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

export function isDay(text: string): boolean {
  if (!DAY.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** The calendar day in `timezone` at instant `now` (ms). */
export function todayIn(timezone: string, now: number): string {
  // en-CA formats as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
}

export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** First day of the month `months` months after `day`'s month (negative: before). */
export function monthStart(day: string, months = 0): string {
  const date = new Date(`${day}T00:00:00Z`);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1)).toISOString().slice(0, 10);
}

export function monthEnd(day: string): string {
  return addDays(monthStart(day, 1), -1);
}

export function daysBetween(range: DayRange): number {
  return Math.round((Date.parse(`${range.to}T00:00:00Z`) - Date.parse(`${range.from}T00:00:00Z`)) / DAY_MS) + 1;
}

/**
 * The days a `date_range` covers, following Plausible's Stats API: `day` is today, `7d` and
 * `28d` end today and span 7 and 28 days, `30d` and `91d` start 30 and 91 days before today,
 * `month`, `year` are the whole current month and year, `6mo`, `12mo` the current month and the
 * 5 or 11 before it, `all` from `firstDay` (the site's first session) to today.
 */
export function resolveDateRange(dateRange: Period | [string, string], today: string, firstDay: string | null = null): DayRange {
  if (Array.isArray(dateRange)) {
    const [from, to] = dateRange;
    for (const day of dateRange) {
      if (!isDay(day)) throw new InvalidStatsQueryError('date_range', `Invalid date_range: '${day}' is not a date YYYY-MM-DD`);
    }
    if (from > to) throw new InvalidStatsQueryError('date_range', `Invalid date_range: ${from} is after ${to}`);
    return { from, to };
  }
  switch (dateRange) {
    case 'day':
      return { from: today, to: today };
    case '7d':
      return { from: addDays(today, -6), to: today };
    case '28d':
      return { from: addDays(today, -27), to: today };
    case '30d':
      return { from: addDays(today, -30), to: today };
    case '91d':
      return { from: addDays(today, -91), to: today };
    case 'month':
      return { from: monthStart(today), to: monthEnd(today) };
    case '6mo':
      return { from: monthStart(today, -5), to: monthEnd(today) };
    case '12mo':
      return { from: monthStart(today, -11), to: monthEnd(today) };
    case 'year':
      return { from: `${today.slice(0, 4)}-01-01`, to: `${today.slice(0, 4)}-12-31` };
    case 'all':
      return { from: firstDay !== null && firstDay < today ? firstDay : today, to: today };
  }
}

/** The range of equal length just before `range` (for "change against the previous period"). */
export function previousPeriod(range: DayRange): DayRange {
  const days = daysBetween(range);
  return { from: addDays(range.from, -days), to: addDays(range.from, -1) };
}

export type TimeGrain = 'hour' | 'day' | 'week' | 'month';

/** The grain of the plain `time` dimension: hours for one day, days up to 92 days, else months. */
export function autoGrain(range: DayRange): TimeGrain {
  const days = daysBetween(range);
  if (days <= 1) return 'hour';
  if (days <= 92) return 'day';
  return 'month';
}

/**
 * Every bucket label of `range` at `grain`, in order, formatted as the query returns them
 * (hour "YYYY-MM-DD HH:00:00", day "YYYY-MM-DD", week: its Monday, month: its first day).
 * Hours are wall-clock hours of each day (24 a day; on a daylight-saving change one of them
 * may never hold data).
 */
export function timeLabels(range: DayRange, grain: TimeGrain): string[] {
  const labels: string[] = [];
  if (grain === 'hour' || grain === 'day') {
    for (let day = range.from; day <= range.to; day = addDays(day, 1)) {
      if (grain === 'day') labels.push(day);
      else for (let h = 0; h < 24; h++) labels.push(`${day} ${String(h).padStart(2, '0')}:00:00`);
    }
  } else if (grain === 'week') {
    const weekday = (new Date(`${range.from}T00:00:00Z`).getUTCDay() + 6) % 7;
    for (let day = addDays(range.from, -weekday); day <= range.to; day = addDays(day, 7)) labels.push(day);
  } else {
    for (let day = monthStart(range.from); day <= range.to; day = monthStart(day, 1)) labels.push(day);
  }
  return labels;
}
