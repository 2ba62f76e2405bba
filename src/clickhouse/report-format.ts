/**
 * Renders report rows: an aligned table for people, JSON and CSV for programs. JSON and CSV
 * carry the additive totals (sessions, engaged sessions, bounces, duration, views) next to the
 * derived ratios, so a consumer can re-aggregate days or groups without averaging averages.
 * Users are distinct per row and do not add up across groups.
 */
import type { ReportDimension, ReportRow } from './report-queries';

export const REPORT_FORMATS = ['table', 'json', 'csv'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** The fields of a JSON or CSV record, in order (`site` when the rows are by site). */
export function reportColumns(by?: ReportDimension, bySite = false): string[] {
  return [
    'day',
    ...(bySite ? ['site'] : []),
    ...(by ? [by] : []),
    'sessions',
    'users',
    'engaged_sessions',
    'bounces',
    'total_duration_ms',
    'views',
    'engaged_rate',
    'bounce_rate',
    'avg_duration_s',
    'views_per_session',
  ];
}

/** One record per row, fields as `reportColumns`; shared by JSON and CSV. */
export function reportRecords(rows: readonly ReportRow[], by?: ReportDimension): Record<string, string | number>[] {
  return rows.map((row) => ({
    day: row.day,
    ...(row.site !== undefined ? { site: row.site } : {}),
    ...(by ? { [by]: row.group } : {}),
    sessions: row.sessions,
    users: row.users,
    engaged_sessions: row.engagedSessions,
    bounces: row.bounces,
    total_duration_ms: row.durationMs,
    views: row.views,
    engaged_rate: round(row.engagedRate, 4),
    bounce_rate: round(row.bounceRate, 4),
    avg_duration_s: round(row.avgDurationMs / 1000, 3),
    views_per_session: round(row.viewsPerSession, 3),
  }));
}

export function formatReport(rows: readonly ReportRow[], format: ReportFormat, by?: ReportDimension): string {
  switch (format) {
    case 'json':
      return formatJson(rows, by);
    case 'csv':
      return formatCsv(rows, by);
    case 'table':
      return formatTable(rows, by);
  }
}

/** A JSON array, one row per line. */
function formatJson(rows: readonly ReportRow[], by?: ReportDimension): string {
  const records = reportRecords(rows, by);
  if (records.length === 0) return '[]\n';
  return `[\n${records.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n]\n`;
}

function formatCsv(rows: readonly ReportRow[], by?: ReportDimension): string {
  const header = reportColumns(by, rows.some((row) => row.site !== undefined));
  const lines = [header.join(',')];
  for (const record of reportRecords(rows, by)) lines.push(header.map((column) => csvField(record[column] ?? '')).join(','));
  return `${lines.join('\n')}\n`;
}

/** RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes inside. */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

interface Column {
  title: string;
  align: 'left' | 'right';
  cell: (row: ReportRow) => string;
}

function formatTable(rows: readonly ReportRow[], by?: ReportDimension): string {
  const columns: Column[] = [
    { title: 'day', align: 'left', cell: (r) => r.day },
    ...(rows.some((row) => row.site !== undefined) ? [{ title: 'site', align: 'left' as const, cell: (r: ReportRow) => r.site ?? '' }] : []),
    ...(by ? [{ title: by, align: 'left' as const, cell: (r: ReportRow) => (r.group === '' ? '(empty)' : r.group) }] : []),
    { title: 'sessions', align: 'right', cell: (r) => String(r.sessions) },
    { title: 'users', align: 'right', cell: (r) => String(r.users) },
    { title: 'engaged', align: 'right', cell: (r) => percent(r.engagedRate) },
    { title: 'bounce', align: 'right', cell: (r) => percent(r.bounceRate) },
    { title: 'avg duration', align: 'right', cell: (r) => formatDuration(r.avgDurationMs) },
    { title: 'views/session', align: 'right', cell: (r) => r.viewsPerSession.toFixed(2) },
  ];
  const cells = rows.map((row) => columns.map((column) => printable(column.cell(row))));
  const widths = columns.map((column, i) => Math.max(column.title.length, ...cells.map((line) => (line[i] as string).length)));
  const render = (values: string[]) =>
    values
      .map((value, i) => (columns[i]?.align === 'right' ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [render(columns.map((c) => c.title)), render(widths.map((w) => '-'.repeat(w))), ...cells.map(render)];
  return `${lines.join('\n')}\n`;
}

/** 0.4166 → "41.7%". */
export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** 12 345 ms → "12.3s"; 65 000 → "1m 05s"; 3 720 000 → "1h 02m". */
export function formatDuration(ms: number): string {
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)}m ${String(totalSeconds % 60).padStart(2, '0')}s`;
  const totalMinutes = Math.round(ms / 60_000);
  return `${Math.floor(totalMinutes / 60)}h ${String(totalMinutes % 60).padStart(2, '0')}m`;
}

/** Keeps one row on one line: control characters in a group value would break the table. */
function printable(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : c;
  }
  return out;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
