/** How figures read on the pages and in exports. */
import type { MetricFormat } from './catalog';

const COUNT = new Intl.NumberFormat('en-US');
const COMPACT = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export function formatMetric(value: number | null | undefined, format: MetricFormat): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  switch (format) {
    case 'count':
      return value >= 100_000 ? COMPACT.format(value) : COUNT.format(Math.round(value));
    case 'decimal':
      return value.toFixed(2);
    case 'percent':
      return `${Math.round(value)}%`;
    case 'duration':
      return formatDuration(value);
  }
}

/** Seconds as "1h 2m", "3m 4s" or "5s". */
export function formatDuration(seconds: number): string {
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/**
 * Change against the previous period: percent for counts, percentage points for rates (as
 * Plausible shows bounce rate). null when there is nothing to compare with.
 */
export function changeOf(current: number | null, previous: number | null, format: MetricFormat): number | null {
  if (current === null || previous === null) return null;
  if (format === 'percent') return Math.round(current - previous);
  if (previous === 0) return current === 0 ? 0 : null;
  return Math.round(((current - previous) / previous) * 100);
}
