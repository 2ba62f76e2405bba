/**
 * `sessionizer report --from D --to D [--by DIMENSION] [--format table|json|csv]`: sessions and
 * their metrics per day (UTC) and group, from the roll-ups in ClickHouse. The table goes to
 * stdout; bad dates or options exit with code 2 before anything is queried.
 */
import { createClickHouseClient } from '../clickhouse/client';
import { formatReport, type ReportFormat } from '../clickhouse/report-format';
import { sessionReport, type ReportDimension, type ReportRow } from '../clickhouse/report-queries';
import { loadConfig, type Config } from '../config';
import { UsageError } from '../errors';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import { formatPeopleReport, PERSON_DIMENSIONS, peopleReport, type PeopleReportDimension, type PeopleReportRow } from '../people/people-report';
import { isCalendarDay } from './command-arguments';

export { isCalendarDay, parseReportDay } from './command-arguments';

export interface ReportCommandOptions {
  from: string;
  to: string;
  by?: ReportDimension | PeopleReportDimension;
  format: ReportFormat;
  /** Person-level numbers (src/people/people-report.ts) instead of session metrics. */
  people?: boolean;
}

export interface ReportCommandDeps {
  config?: Config;
  /** Receives the rendered report; stdout by default. */
  write?: (text: string) => void;
}

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

export async function runReport(options: ReportCommandOptions, deps: ReportCommandDeps = {}): Promise<ReportRow[] | PeopleReportRow[]> {
  validateReportRange(options.from, options.to);
  if (!options.people && (PERSON_DIMENSIONS as readonly string[]).includes(options.by ?? '')) {
    throw new UsageError(`report: --by ${options.by} is a person dimension; it needs --people`);
  }
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  await preflight(config, { clickhouse: true }, createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'report' }));
  const client = createClickHouseClient(config.clickhouse, { application: 'sessionizer-report' });
  try {
    if (options.people) {
      const by = options.by as PeopleReportDimension | undefined;
      const people = await peopleReport(client, config.clickhouse.database, { from: options.from, to: options.to, by });
      write(formatPeopleReport(people, options.format, by));
      if (people.length === 0 && options.format === 'table') process.stderr.write(`report: no sessions from ${options.from} to ${options.to}\n`);
      return people;
    }
    const rows = await sessionReport(client, config.clickhouse.database, { ...options, by: options.by as ReportDimension | undefined });
    write(formatReport(rows, options.format, options.by as ReportDimension | undefined));
    if (rows.length === 0 && options.format === 'table') {
      process.stderr.write(`report: no sessions from ${options.from} to ${options.to}\n`);
    }
    return rows;
  } finally {
    await client.close();
  }
}
