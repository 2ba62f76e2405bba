/**
 * `sessionizer report [--from D] [--to D] [--by DIMENSION] [--site SITE] [--format table|json|csv] [--people]`:
 * sessions and their metrics per day (UTC) and group, from the roll-ups in ClickHouse, for the
 * last 30 days unless told otherwise. Without --site: the one site with sessions in the range,
 * or, when there are several, every site with a site column. The table goes to stdout; bad
 * dates or options exit with code 2 before anything is queried.
 */
import { createClickHouseClient } from '../clickhouse/client';
import { formatReport, type ReportFormat } from '../clickhouse/report-format';
import { sessionReport, type ReportDimension, type ReportRow } from '../clickhouse/report-queries';
import { parseSiteOption, reportScope, sitesWithSessions } from '../clickhouse/site-scope';
import { loadConfig, type Config } from '../config';
import { UsageError } from '../errors';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import { formatPeopleReport, PERSON_DIMENSIONS, peopleReport, type PeopleReportDimension, type PeopleReportRow } from '../people/people-report';
import { isCalendarDay } from './command-arguments';

export { isCalendarDay, parseReportDay } from './command-arguments';

export interface ReportCommandOptions {
  /** First day, YYYY-MM-DD; default: 29 days before `to` (a range of 30 days). */
  from?: string;
  /** Last day, inclusive; default: today. */
  to?: string;
  by?: ReportDimension | PeopleReportDimension;
  format: ReportFormat;
  /** Person-level numbers (src/people/people-report.ts) instead of session metrics. */
  people?: boolean;
  /** Only this site; absent: the one site in the data, or every site side by side. */
  site?: string;
}

export interface ReportCommandDeps {
  config?: Config;
  /** Receives the rendered report; stdout by default. */
  write?: (text: string) => void;
  /** The clock that decides "today" when a date is left out. */
  now?: () => number;
}

/** Days a report covers when no --from is given: the last 30, today included. */
export const DEFAULT_REPORT_DAYS = 30;

/** Longest range one report covers, so a typo such as 2204 for 2024 fails fast. */
export const MAX_REPORT_DAYS = 3660;

export function validateReportRange(from: string, to: string): void {
  for (const [option, value] of [['--from', from], ['--to', to]] as const) {
    if (!isCalendarDay(value)) throw new UsageError(`report: ${option} '${value}' is not a calendar date YYYY-MM-DD`);
  }
  if (from > to) throw new UsageError(`report: --from ${from} is after --to ${to}`);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  if (days > MAX_REPORT_DAYS) throw new UsageError(`report: ${days} days from ${from} to ${to}; at most ${MAX_REPORT_DAYS}`);
}

/** YYYY-MM-DD of the instant `ms` in `timeZone` (an IANA name). */
export function dayIn(ms: number, timeZone: string): string {
  // en-CA writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * The days a report covers: what was given, else the last 30 days up to today, where "today"
 * is the day in the site's time zone (UTC until sites have one). Only --from given: up to today;
 * only --to given: the 30 days ending there.
 */
export function resolveReportRange(given: { from?: string; to?: string }, nowMs: number, timeZone = 'UTC'): { from: string; to: string } {
  const to = given.to ?? dayIn(nowMs, timeZone);
  const from = given.from ?? addDays(to, -(DEFAULT_REPORT_DAYS - 1));
  return { from, to };
}

export async function runReport(given: ReportCommandOptions, deps: ReportCommandDeps = {}): Promise<ReportRow[] | PeopleReportRow[]> {
  const options = { ...given, ...resolveReportRange(given, (deps.now ?? Date.now)()) };
  validateReportRange(options.from, options.to);
  const site = parseSiteOption('report', options.site);
  if (!options.people && (PERSON_DIMENSIONS as readonly string[]).includes(options.by ?? '')) {
    throw new UsageError(`report: --by ${options.by} is a person dimension; it needs --people`);
  }
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  await preflight(config, { clickhouse: true }, createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'report' }));
  const client = createClickHouseClient(config.clickhouse, { application: 'sessionizer-report' });
  try {
    const days = { from: options.from, to: options.to };
    const scope = reportScope(site, site === undefined ? await sitesWithSessions(client, config.clickhouse.database, days) : []);
    if (options.people) {
      const by = options.by as PeopleReportDimension | undefined;
      const people = await peopleReport(client, config.clickhouse.database, { ...days, by, ...scope });
      write(formatPeopleReport(people, options.format, by));
      if (people.length === 0 && options.format === 'table') process.stderr.write(`report: no sessions from ${options.from} to ${options.to}\n`);
      return people;
    }
    const rows = await sessionReport(client, config.clickhouse.database, { ...days, by: options.by as ReportDimension | undefined, ...scope });
    write(formatReport(rows, options.format, options.by as ReportDimension | undefined));
    if (rows.length === 0 && options.format === 'table') {
      process.stderr.write(`report: no sessions from ${options.from} to ${options.to}\n`);
    }
    return rows;
  } finally {
    await client.close();
  }
}
