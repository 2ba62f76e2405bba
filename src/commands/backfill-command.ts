/**
 * `sessionizer produce --input FILE|- --backfill`: loads history into sessions without going
 * through Kafka, then recalculates the users it touched.
 *
 * Why not through Kafka: replayed into a partition whose event time is already live, history is
 * later than the allowed lateness, so the worker stores it in `events` but applies none of it
 * (all of it counts as late). The backfill does on purpose what that path does by accident, minus
 * the alarms: it validates each line as the worker would, writes the valid events to the
 * `events` table (no Kafka coordinates), then runs the historical recalculation
 * (src/recalc/) for exactly the user keys in the file, from the earliest event in it. That
 * recalculation runs next to the live worker like `recompute --since` does, and reports users
 * whose part the worker owns and cannot finish, with when to run it again (docs/recalculation.md).
 *
 * Idempotent: each insert carries a token made of its lines' content (a rerun inserts nothing
 * the deduplication window still knows; beyond it, `events` collapses copies on merge and the
 * engine counts an event once), and the recalculation writes only differences.
 */
import { createHash } from 'node:crypto';
import { createClickHouseClient } from '../clickhouse/client';
import { toEventRow, type EventRow } from '../clickhouse/event-row';
import { describeError } from '../clickhouse/external-data';
import { ClickHouseSink } from '../clickhouse/session-sink';
import { loadConfig, type Config } from '../config';
import { ClickHouseQueryError, UnreadableInputError } from '../errors';
import { MAX_EVENT_BYTES, parseEvent } from '../events/parse-event';
import { BinaryInputError, refuseBinaryInput } from '../io/binary-input';
import { openInput } from '../io/input-file';
import { NotUtf8Line, readLines } from '../io/line-reader';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import type { RecalculationStats } from '../recalc/recalculate';
import { runRecalculation } from './recompute-command';

export interface BackfillOptions {
  input: string;
  /**
   * `--site S`: the file's events are of site S (those that name none are given it; a line that
   * names another site is skipped as invalid), and only S's sessions are recalculated.
   */
  site?: string;
  /** User keys per recalculation page (as `recompute --page-users`). */
  pageUsers?: number;
}

export interface BackfillDeps {
  config?: Config;
  /** Where reports go; stderr by default. */
  log?: (text: string) => void;
}

export interface BackfillStats {
  lines: number;
  events: number;
  invalid: number;
  users: number;
  /** Earliest event time in the file (NaN when no valid event). */
  sinceMs: number;
  recalculation: RecalculationStats | null;
}

/** Events per insert into `events`. */
const INSERT_ROWS = 20_000;
/** How many invalid lines are described one by one; the rest are counted. */
const LISTED_INVALID_LINES = 100;

export async function runBackfill(options: BackfillOptions, deps: BackfillDeps = {}): Promise<BackfillStats> {
  const config = deps.config ?? loadConfig();
  const write = deps.log ?? ((text: string) => void process.stderr.write(text));
  const { stream } = openInput(options.input, MAX_EVENT_BYTES);
  // Both services answer, or one line says which does not, before any event is written: the
  // recalculation after the load needs Redis too.
  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'backfill' });
  await preflight(config, { redis: true, clickhouse: true }, log);
  const name = options.input === '-' ? 'stdin' : options.input;
  const database = config.clickhouse.database;
  const clickhouse = createClickHouseClient(config.clickhouse, { application: 'sessionizer-backfill', requestTimeoutMs: 300_000 });
  const sink = new ClickHouseSink(clickhouse, database);
  const stats: BackfillStats = { lines: 0, events: 0, invalid: 0, users: 0, sinceMs: NaN, recalculation: null };
  const keys = new Set<string>();

  let rows: EventRow[] = [];
  let hash = createHash('sha256');
  let firstLine = 1;
  const flush = async () => {
    if (rows.length === 0) return;
    const token = `backfill:${hash.digest('hex')}`;
    try {
      await sink.insertEvents(rows, token);
    } catch (err) {
      throw new ClickHouseQueryError(`writing ${rows.length} events (lines ${firstLine}–${stats.lines}) to ${database}.events`, describeError(err), { cause: err });
    }
    rows = [];
    hash = createHash('sha256');
    firstLine = stats.lines + 1;
  };

  try {
    for await (const line of readLines(refuseBinaryInput(stream))) {
      stats.lines += 1;
      const parsed = line instanceof NotUtf8Line ? null : line.trim() === '' ? undefined : parseEvent(line, options.site);
      if (parsed === undefined) continue; // blank
      const otherSite = parsed?.ok && options.site !== undefined && parsed.valid.site && parsed.valid.site !== options.site ? parsed.valid.site : null;
      if (parsed === null || !parsed.ok || otherSite !== null) {
        stats.invalid += 1;
        const reason =
          parsed === null ? (line as NotUtf8Line).reason : !parsed.ok ? parsed.error.message : `site: the event is of site ${otherSite}, not of --site ${options.site}`;
        if (stats.invalid <= LISTED_INVALID_LINES) write(`line ${stats.lines}: skipped, ${reason}\n`);
        continue;
      }
      const text = line as string;
      rows.push(toEventRow(parsed.valid, text, undefined, options.site));
      hash.update(text).update('\n');
      keys.add(parsed.event.userKey);
      stats.events += 1;
      stats.sinceMs = Number.isNaN(stats.sinceMs) ? parsed.event.ts : Math.min(stats.sinceMs, parsed.event.ts);
      if (rows.length >= INSERT_ROWS) await flush();
    }
    await flush();
  } catch (err) {
    if (err instanceof BinaryInputError) throw new UnreadableInputError(name, err.reason);
    throw err;
  } finally {
    await clickhouse.close();
  }
  stats.users = keys.size;
  if (stats.invalid > LISTED_INVALID_LINES) write(`… and ${stats.invalid - LISTED_INVALID_LINES} more invalid lines\n`);
  write(
    `backfill: ${stats.lines} lines, ${stats.events} events of ${stats.users} users written to ${database}.events, ${stats.invalid} invalid lines skipped\n`,
  );
  if (stats.events === 0) return stats;

  write(`backfill: recalculating those ${stats.users} users from ${new Date(stats.sinceMs).toISOString()}\n`);
  stats.recalculation = await runRecalculation(config, { sinceMs: stats.sinceMs, pageUsers: options.pageUsers, userKeys: keys, site: options.site });
  return stats;
}
