/**
 * `sessionizer report --from D --to D [--by DIMENSION] [--site SITE] [--format table|json|csv]`: sessions
 * and their metrics per day (UTC) and group, from the roll-ups in ClickHouse. Without --site: the
 * one site with sessions in the range, or, when there are several, every site with a site column. The table goes to
 * stdout; bad dates or options exit with code 2 before anything is queried.
 */
import { InvalidArgumentError } from 'commander';
import { createClickHouseClient } from '../clickhouse/client';
import { formatReport, type ReportFormat } from '../clickhouse/report-format';
import { sessionReport, type ReportDimension, type ReportRow } from '../clickhouse/report-queries';
import { parseSiteOption, reportScope, sitesWithSessions } from '../clickhouse/site-scope';
import { loadConfig, type Config } from '../config';
import { UsageError } from '../errors';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import { formatPeopleReport, PERSON_DIMENSIONS, peopleReport, type PeopleReportDimension, type PeopleReportRow } from '../people/people-report';

export interface ReportCommandOptions {
  from: string;
  to: string;
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
}

/** Longest range one report covers, so a typo such as 2204 for 2024 fails fast. */
export const MAX_REPORT_DAYS = 3660;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isCalendarDay(value: string): boolean {
  const match = DAY.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** Commander argument parser for --from and --to (its error becomes exit code 2). */
export function parseReportDay(value: string): string {
  if (!isCalendarDay(value)) throw new InvalidArgumentError('expected a calendar date YYYY-MM-DD');
  return value;
}

export function validateReportRange(from: string, to: string): void {
  for (const [option, value] of [['--from', from], ['--to', to]] as const) {
    if (!isCalendarDay(value)) throw new UsageError(`report: ${option} '${value}' is not a calendar date YYYY-MM-DD`);
  }
  if (from > to) throw new UsageError(`report: --from ${from} is after --to ${to}`);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  if (days > MAX_REPORT_DAYS) throw new UsageError(`report: ${days} days from ${from} to ${to}; at most ${MAX_REPORT_DAYS}`);
}

export async function runReport(options: ReportCommandOptions, deps: ReportCommandDeps = {}): Promise<ReportRow[] | PeopleReportRow[]> {
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
