import { InvalidStatsQueryError } from '../../../src/errors';
import { autoGrain, previousPeriod, resolveDateRange, timeLabels, todayIn } from '../../../src/dashboard/stats/date-range';
import { parseStatsQuery } from '../../../src/dashboard/stats/query';
import { buildStatsSql } from '../../../src/dashboard/stats/query-sql';

function refusal(body: object): InvalidStatsQueryError {
  try {
    parseStatsQuery(body);
  } catch (err) {
    if (err instanceof InvalidStatsQueryError) return err;
    throw err;
  }
  throw new Error('accepted');
}

const base = { site_id: 'shop', metrics: ['visitors'], date_range: '7d' };

describe('parseStatsQuery', () => {
  it('fills Plausible’s defaults', () => {
    expect(parseStatsQuery(base)).toEqual({
      site_id: 'shop',
      metrics: ['visitors'],
      date_range: '7d',
      dimensions: [],
      filters: [],
      order_by: undefined,
      pagination: { limit: 10_000, offset: 0 },
      include: { time_labels: false, total_rows: false, imports: false },
    });
  });

  it('keeps nested and/or/not filters with their modifiers', () => {
    const filters = [['or', [['is', 'visit:country', ['EE', 'DE']], ['not', ['contains', 'visit:source', ['GOOGLE'], { case_sensitive: false }]]]]];
    expect(parseStatsQuery({ ...base, filters }).filters).toEqual(filters);
  });

  it.each([
    [{ metrics: ['visitors', 'scroll_depth'] }, 'metrics', "Unknown metric 'scroll_depth'"],
    [{ dimensions: ['visit:planet'] }, 'dimensions', "Unknown dimension 'visit:planet'"],
    [{ dimensions: ['event:hostname'] }, 'dimensions', "Unsupported dimension 'event:hostname'"],
    [{ dimensions: ['event:planet'] }, 'dimensions', "Unknown dimension 'event:planet'"],
    [{ dimensions: ['event:goal', 'event:name'] }, 'dimensions', 'at most one event dimension'],
    [{ metrics: ['visitors', 'cross_device_share'] }, 'metrics', "cannot be asked with 'visitors'"],
    [{ metrics: ['cross_device_share'], dimensions: ['visit:source'] }, 'dimensions', 'without dimensions'],
    [{ dimensions: ['event:props:plan'] }, 'dimensions', 'custom properties'],
    [{ filters: [['is', 'visit:planet', ['x']]] }, 'filters', "Unknown filter dimension 'visit:planet'"],
    [{ filters: [['has_done', 'visit:source', ['x']]] }, 'filters', "Unknown filter operator 'has_done'"],
    [{ filters: [['is', 'visit:source', []]] }, 'filters', 'clauses'],
    [{ filters: [['is', 'visit:source', ['x'], { case_sensitive: 'no' }]] }, 'filters', 'case_sensitive'],
    [{ date_range: 'yesterday' }, 'date_range', 'date_range'],
    [{ date_range: ['2024-02-30', '2024-03-01'] }, 'date_range', "'2024-02-30' is not a date"],
    [{ date_range: ['2024-03-02', '2024-03-01'] }, 'date_range', 'is after'],
    [{ order_by: [['pageviews', 'desc']] }, 'order_by', "'pageviews': not a queried metric or dimension"],
    [{ include: { time_labels: true } }, 'include', 'requires a time dimension'],
    [{ dimensions: ['time:day', 'time:hour'] }, 'dimensions', 'at most one time dimension'],
    [{ pagination: { limit: 20000 } }, 'pagination', 'pagination.limit'],
    [{ site: 'shop' }, 'body', "'site'"],
  ])('%j is 400 naming it', (change, field, message) => {
    const error = refusal({ ...base, ...change });
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
  });
});

describe('date ranges', () => {
  it('follow Plausible’s periods, in calendar days', () => {
    const today = '2024-03-15';
    expect(resolveDateRange('day', today)).toEqual({ from: today, to: today });
    expect(resolveDateRange('7d', today)).toEqual({ from: '2024-03-09', to: today });
    expect(resolveDateRange('28d', today)).toEqual({ from: '2024-02-17', to: today });
    expect(resolveDateRange('30d', today)).toEqual({ from: '2024-02-14', to: today });
    expect(resolveDateRange('month', today)).toEqual({ from: '2024-03-01', to: '2024-03-31' });
    expect(resolveDateRange('6mo', today)).toEqual({ from: '2023-10-01', to: '2024-03-31' });
    expect(resolveDateRange('12mo', today)).toEqual({ from: '2023-04-01', to: '2024-03-31' });
    expect(resolveDateRange('year', today)).toEqual({ from: '2024-01-01', to: '2024-12-31' });
    expect(resolveDateRange('all', today, '2023-11-02')).toEqual({ from: '2023-11-02', to: today });
    expect(resolveDateRange('all', today, null)).toEqual({ from: today, to: today });
  });

  it('today is the site’s calendar day', () => {
    const instant = Date.parse('2024-03-15T23:30:00Z');
    expect(todayIn('UTC', instant)).toBe('2024-03-15');
    expect(todayIn('Europe/Berlin', instant)).toBe('2024-03-16');
    expect(todayIn('America/Los_Angeles', instant)).toBe('2024-03-15');
  });

  it('the previous period has the same length and ends the day before', () => {
    expect(previousPeriod({ from: '2024-03-01', to: '2024-03-31' })).toEqual({ from: '2024-01-30', to: '2024-02-29' });
  });

  it('time labels cover every bucket of the range', () => {
    expect(timeLabels({ from: '2024-02-28', to: '2024-03-01' }, 'day')).toEqual(['2024-02-28', '2024-02-29', '2024-03-01']);
    expect(timeLabels({ from: '2024-03-01', to: '2024-03-01' }, 'hour')).toHaveLength(24);
    expect(timeLabels({ from: '2024-03-06', to: '2024-03-19' }, 'week')).toEqual(['2024-03-04', '2024-03-11', '2024-03-18']);
    expect(timeLabels({ from: '2023-12-15', to: '2024-02-01' }, 'month')).toEqual(['2023-12-01', '2024-01-01', '2024-02-01']);
    expect(autoGrain({ from: '2024-03-01', to: '2024-03-01' })).toBe('hour');
    expect(autoGrain({ from: '2024-01-01', to: '2024-03-31' })).toBe('day');
    expect(autoGrain({ from: '2023-01-01', to: '2024-03-31' })).toBe('month');
  });
});

describe('the query builder', () => {
  const context = { database: 'db', site: 'shop', timezone: 'Europe/Berlin', range: { from: '2024-03-01', to: '2024-03-31' }, autoGrain: 'day' as const };

  it('reads the site’s part of sessions without FINAL, values as parameters', () => {
    const built = buildStatsSql(parseStatsQuery({ ...base, metrics: ['visits', 'bounce_rate'], filters: [['is', 'visit:source', ["x' OR 1=1 --"]]] }), context);
    expect(built.sql).not.toMatch(/FINAL/);
    expect(built.sql).toContain('site = {site:String}');
    expect(built.sql).not.toContain('OR 1=1');
    expect(built.params).toMatchObject({ site: 'shop', tz: 'Europe/Berlin', from: '2024-03-01 00:00:00', to: '2024-04-01 00:00:00', f0: ["x' OR 1=1 --"] });
    // Visits alone need no per-user level.
    expect(built.sql).not.toContain('user_hash');
  });

  it('groups per user key only when visitors are asked for, and joins key events only for conversions', () => {
    const visitors = buildStatsSql(parseStatsQuery({ ...base, metrics: ['visitors'] }), context).sql;
    expect(visitors).toContain('GROUP BY user_hash');
    expect(visitors).not.toContain('events');
    const conversions = buildStatsSql(parseStatsQuery({ ...base, metrics: ['conversion_rate'] }), context).sql;
    expect(conversions).toContain('db.events');
    expect(conversions).toContain('key_event = 1');
  });

  it('joins the site’s events of the range only for an event dimension or filter, without FINAL', () => {
    const goals = buildStatsSql(parseStatsQuery({ ...base, metrics: ['visitors', 'events'], dimensions: ['event:goal'] }), context).sql;
    expect(goals).not.toMatch(/FINAL/);
    expect(goals).toContain('arrayJoin(arrayDistinct(');
    expect(goals).toMatch(/FROM db\.events\s+WHERE site = \{site:String\} AND key_event = 1/);
    const filtered = buildStatsSql(parseStatsQuery({ ...base, metrics: ['visits'], filters: [['is', 'event:page', ['/cart']]] }), context).sql;
    expect(filtered).toContain('hasAny(');
    expect(filtered).not.toContain('arrayJoin');
  });

  it('answers person metrics by their own query over the site’s sessions and identity links, without FINAL', () => {
    const built = buildStatsSql(parseStatsQuery({ ...base, metrics: ['identified_people', 'cross_device_share'] }), context);
    expect(built.sql).not.toMatch(/FINAL/);
    expect(built.sql).toContain('db.identity_links');
    expect(built.sql).toContain('site = {site:String}');
    expect(built.metricColumns).toEqual(['m0', 'm1']);
  });
});
