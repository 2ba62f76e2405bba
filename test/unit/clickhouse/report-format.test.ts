/**
 * The report's derived metrics, ordering and rendering (table, JSON, CSV), and the date
 * checks of `sessionizer report`.
 */
import { csvField, formatDuration, formatReport, percent, reportColumns } from '../../../src/clickhouse/report-format';
import { compareReportRows, reportRowOf, type ReportRow, type ReportTotals } from '../../../src/clickhouse/report-queries';
import { isCalendarDay, parseReportDay, resolveReportRange, validateReportRange } from '../../../src/commands/report-command';
import { UsageError } from '../../../src/errors';

function totals(overrides: Partial<ReportTotals>): ReportTotals {
  return { day: '2024-05-01', group: '', sessions: 0, users: 0, engagedSessions: 0, bounces: 0, durationMs: 0, views: 0, ...overrides };
}

const rows: ReportRow[] = [
  reportRowOf(totals({ group: 'web', sessions: 12, users: 10, engagedSessions: 5, bounces: 7, durationMs: 780_000, views: 30 })),
  reportRowOf(totals({ group: 'a,"b"', sessions: 3, users: 3, engagedSessions: 3, bounces: 0, durationMs: 9_000, views: 6 })),
];

describe('reportRowOf', () => {
  it('derives rates and averages from the totals', () => {
    expect(rows[0]).toMatchObject({ engagedRate: 5 / 12, bounceRate: 7 / 12, avgDurationMs: 65_000, viewsPerSession: 2.5 });
  });

  it('gives zeros, not NaN, without sessions', () => {
    expect(reportRowOf(totals({}))).toMatchObject({ engagedRate: 0, bounceRate: 0, avgDurationMs: 0, viewsPerSession: 0 });
  });
});

describe('compareReportRows', () => {
  it('orders by day, then most sessions, then group', () => {
    const sorted = [
      totals({ day: '2024-05-02', group: 'x', sessions: 9 }),
      totals({ day: '2024-05-01', group: 'b', sessions: 1 }),
      totals({ day: '2024-05-01', group: 'a', sessions: 1 }),
      totals({ day: '2024-05-01', group: 'z', sessions: 5 }),
    ].sort(compareReportRows);
    expect(sorted.map((r) => `${r.day} ${r.group}`)).toEqual(['2024-05-01 z', '2024-05-01 a', '2024-05-01 b', '2024-05-02 x']);
  });
});

describe('formatReport', () => {
  it('aligns a table for people: text left, numbers right', () => {
    expect(formatReport(rows, 'table', 'channel')).toBe(
      [
        'day         channel  sessions  users  engaged  bounce  avg duration  views/session',
        '----------  -------  --------  -----  -------  ------  ------------  -------------',
        '2024-05-01  web            12     10    41.7%   58.3%        1m 05s           2.50',
        '2024-05-01  a,"b"           3      3   100.0%    0.0%          3.0s           2.00',
        '',
      ].join('\n'),
    );
  });

  it('shows an empty group as (empty) and escapes control characters', () => {
    const table = formatReport([reportRowOf(totals({ sessions: 1 })), reportRowOf(totals({ group: 'a\nb', sessions: 1 }))], 'table', 'source');
    expect(table).toContain('(empty)');
    expect(table).toContain('a\\x0ab');
    expect(table.split('\n')).toHaveLength(5);
  });

  it('leaves the group column out without --by', () => {
    expect(formatReport(rows.slice(0, 1), 'table').split('\n')[0]).toBe('day         sessions  users  engaged  bounce  avg duration  views/session');
  });

  it('writes JSON: an array, one row per line, totals and rounded ratios', () => {
    const json = formatReport(rows, 'json', 'channel');
    expect(json.split('\n')).toHaveLength(5);
    expect(JSON.parse(json)).toEqual([
      {
        day: '2024-05-01',
        channel: 'web',
        sessions: 12,
        users: 10,
        engaged_sessions: 5,
        bounces: 7,
        total_duration_ms: 780_000,
        views: 30,
        engaged_rate: 0.4167,
        bounce_rate: 0.5833,
        avg_duration_s: 65,
        views_per_session: 2.5,
      },
      expect.objectContaining({ channel: 'a,"b"', sessions: 3 }),
    ]);
    expect(formatReport([], 'json')).toBe('[]\n');
  });

  it('writes CSV with a header and RFC 4180 quoting', () => {
    const lines = formatReport(rows, 'csv', 'campaign').trimEnd().split('\n');
    expect(lines[0]).toBe(reportColumns('campaign').join(','));
    expect(lines[0]).toBe(
      'day,campaign,sessions,users,engaged_sessions,bounces,total_duration_ms,views,engaged_rate,bounce_rate,avg_duration_s,views_per_session',
    );
    expect(lines[1]).toBe('2024-05-01,web,12,10,5,7,780000,30,0.4167,0.5833,65,2.5');
    expect(lines[2]).toBe('2024-05-01,"a,""b""",3,3,3,0,9000,6,1,0,3,2');
    expect(formatReport([], 'csv')).toBe(`${reportColumns().join(',')}\n`);
  });
});

describe('formatting helpers', () => {
  it('formats durations for people', () => {
    expect(formatDuration(0)).toBe('0.0s');
    expect(formatDuration(12_345)).toBe('12.3s');
    expect(formatDuration(59_960)).toBe('1m 00s');
    expect(formatDuration(65_000)).toBe('1m 05s');
    expect(formatDuration(3_720_000)).toBe('1h 02m');
  });

  it('formats ratios as percentages and quotes CSV fields only when needed', () => {
    expect(percent(0.41666)).toBe('41.7%');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csvField(3)).toBe('3');
  });
});

describe('report dates', () => {
  it('accepts calendar days only', () => {
    expect(parseReportDay('2024-02-29')).toBe('2024-02-29');
    for (const bad of ['2023-02-29', '2024-13-01', '2024-5-1', '01.05.2024', '2024-05-01T00:00:00Z', '']) {
      expect(isCalendarDay(bad)).toBe(false);
      expect(() => parseReportDay(bad)).toThrow(/YYYY-MM-DD/);
    }
  });

  it('needs --from on or before --to, within ten years', () => {
    expect(() => validateReportRange('2024-05-01', '2024-05-01')).not.toThrow();
    expect(() => validateReportRange('2024-05-02', '2024-05-01')).toThrow(UsageError);
    expect(() => validateReportRange('2024-05-02', '2024-05-01')).toThrow('report: --from 2024-05-02 is after --to 2024-05-01');
    expect(() => validateReportRange('2004-05-01', '2024-05-01')).toThrow(/at most 3660/);
    expect(() => validateReportRange('2024-02-30', '2024-05-01')).toThrow(/--from '2024-02-30' is not a calendar date/);
  });

  it('without dates covers the last 30 days, today included (UTC unless a time zone is given)', () => {
    const now = Date.parse('2026-03-01T23:30:00Z');
    expect(resolveReportRange({}, now)).toEqual({ from: '2026-01-31', to: '2026-03-01' });
    expect(resolveReportRange({ to: '2024-05-04' }, now)).toEqual({ from: '2024-04-05', to: '2024-05-04' });
    expect(resolveReportRange({ from: '2026-02-20' }, now)).toEqual({ from: '2026-02-20', to: '2026-03-01' });
    expect(resolveReportRange({ from: '2024-01-01', to: '2024-01-02' }, now)).toEqual({ from: '2024-01-01', to: '2024-01-02' });
    // 23:30 UTC is already the next day in Tokyo, still the same day in New York.
    expect(resolveReportRange({}, now, 'Asia/Tokyo').to).toBe('2026-03-02');
    expect(resolveReportRange({}, now, 'America/New_York').to).toBe('2026-03-01');
  });
});
