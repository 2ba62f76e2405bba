import { CARD_METRIC_NAMES, DEFAULT_METRIC } from '../../../../src/dashboard/pages/catalog';
import { bucketOf, bucketsOf, defaultInterval, localNow, previousRange, rangeOf } from '../../../../src/dashboard/pages/date-range';
import { parseViewState } from '../../../../src/dashboard/pages/view-state';

const state = (search: string) => parseViewState(search, CARD_METRIC_NAMES, DEFAULT_METRIC);

describe('periods in a site time zone', () => {
  it("takes today's date and hour in the site's zone", () => {
    const now = new Date('2026-03-01T23:30:00Z');
    expect(localNow(now, 'UTC')).toEqual({ day: '2026-03-01', hour: 23 });
    expect(localNow(now, 'Europe/Berlin')).toEqual({ day: '2026-03-02', hour: 0 });
    expect(localNow(now, 'America/Los_Angeles')).toEqual({ day: '2026-03-01', hour: 15 });
  });

  it('covers the days of each period, and the previous period has the same length', () => {
    const today = '2026-03-10';
    expect(rangeOf(state('period=day'), today)).toEqual({ from: today, to: today });
    expect(rangeOf(state('period=day&date=2026-02-01'), today)).toEqual({ from: '2026-02-01', to: '2026-02-01' });
    expect(rangeOf(state(''), today)).toEqual({ from: '2026-03-04', to: today });
    expect(rangeOf(state('period=30d'), today)).toEqual({ from: '2026-02-09', to: today });
    expect(rangeOf(state('period=month'), today)).toEqual({ from: '2026-03-01', to: '2026-03-31' });
    expect(rangeOf(state('period=12mo'), today)).toEqual({ from: '2025-04-01', to: '2026-03-31' });
    expect(previousRange({ from: '2026-03-04', to: '2026-03-10' })).toEqual({ from: '2026-02-25', to: '2026-03-03' });
    expect(previousRange({ from: '2026-03-01', to: '2026-03-31' })).toEqual({ from: '2026-01-29', to: '2026-02-28' });
  });

  it('has every bucket, weeks from Monday and months from the 1st, the first clamped to the range', () => {
    expect(bucketsOf({ from: '2026-03-10', to: '2026-03-10' }, 'hour')).toHaveLength(24);
    expect(bucketsOf({ from: '2026-03-04', to: '2026-03-17' }, 'week')).toEqual(['2026-03-04', '2026-03-09', '2026-03-16']);
    expect(bucketsOf({ from: '2026-01-15', to: '2026-03-02' }, 'month')).toEqual(['2026-01-15', '2026-02-01', '2026-03-01']);
    expect(bucketOf('2026-03-11', 14, 'week', { from: '2026-03-04', to: '2026-03-17' })).toBe('2026-03-09');
    expect(defaultInterval({ from: '2026-03-10', to: '2026-03-10' })).toBe('hour');
    expect(defaultInterval({ from: '2025-04-01', to: '2026-03-31' })).toBe('month');
  });
});
