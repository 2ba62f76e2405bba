/**
 * Parsers of command-line values that `cli.ts` needs while it builds the program, kept apart from
 * the commands themselves: building the program (and so `--help` and `--version`) must not load
 * the Kafka, Redis and ClickHouse clients the commands use. Each parser throws commander's
 * `InvalidArgumentError` or our `UsageError`, both exit code 2.
 */
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../errors';
import { parseIsoTimestamp } from '../events/timestamp';

/** `--since`: YYYY-MM-DD (midnight UTC) or an ISO-8601 date-time with a zone → epoch ms. */
export function parseSince(value: string): number {
  const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const ms = parseIsoTimestamp(text);
  if (typeof ms === 'string') throw new InvalidArgumentError(`expected YYYY-MM-DD or an ISO-8601 date-time with a zone (${ms})`);
  return ms;
}

/** `--at`: comma-separated PARTITION:OFFSET positions of the dead-letter topic. */
export function parsePositions(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of list) if (!/^\d+:\d+$/.test(item)) throw new UsageError(`--at: '${item}' is not PARTITION:OFFSET`);
  return list;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isCalendarDay(value: string): boolean {
  const match = DAY.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** Commander argument parser for `report --from` and `--to` (its error becomes exit code 2). */
export function parseReportDay(value: string): string {
  if (!isCalendarDay(value)) throw new InvalidArgumentError('expected a calendar date YYYY-MM-DD');
  return value;
}
