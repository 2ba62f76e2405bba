/**
 * `sessionizer recompute --input FILE|- [--output FILE|-] [--timeout-minutes N] [--rejects FILE]
 * [--format events|segment] [--key-events NAMES]`: wires files, progress and reporting around the
 * offline recalculation.
 *
 * `sessionizer recompute --since D --sink clickhouse`: the historical recalculation of stored
 * events into ClickHouse (src/recalc/, docs/recalculation.md), configured from the environment
 * like the worker; `runRecalculation` below.
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Writable } from 'node:stream';
import { createClickHouseClient } from '../clickhouse/client';
import { ClickHouseSink } from '../clickhouse/session-sink';
import type { Config } from '../config';
import { NoValidEventsError, UnreadableInputError, UsageError } from '../errors';
import { MAX_EVENT_BYTES } from '../events/parse-event';
import { createProgress, formatBytes } from '../io/progress';
import { BinaryInputError } from '../io/binary-input';
import { openInput } from '../io/input-file';
import { LineWriter } from '../io/line-writer';
import { ClickHouseSource } from '../recalc/clickhouse-source';
import type { KeyShard } from '../recalc/key-shard';
import { recalculate, type RecalculationStats } from '../recalc/recalculate';
import { InvalidLineReport } from '../io/invalid-lines';
import { recompute, type RecomputeStats } from '../recompute/recompute';
import { createRedisClient } from '../state/redis-client';
import { defineStateCommands } from '../state/script-loader';
import { UserCounterStore } from '../state/user-counters';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';

export { parseSince } from './command-arguments';

export interface RecomputeCommandOptions {
  input: string;
  output: string;
  timeoutMinutes: number;
  rejects?: string;
  bufferEvents?: number;
  /** `segment`: the lines are Segment Spec messages, mapped as the worker maps its Segment topics. */
  format?: 'events' | 'segment';
  /** With `format: 'segment'`: track event names that are key events. */
  keyEvents?: string[];
  /** Where the identity map goes (NDJSON, sorted by anonymous_id), or - for stdout. */
  identities?: string;
}

export async function runRecompute(options: RecomputeCommandOptions, deps: { progressIntervalMs?: number } = {}): Promise<RecomputeStats> {
  const started = Date.now();
  refuseOverwritingInput(options);
  const { stream: input, size } = openInput(options.input, MAX_EVENT_BYTES);
  const output = options.output === '-' ? process.stdout : openOutput(options.output);
  const rejects = options.rejects ? new LineWriter(openOutput(options.rejects)) : null;
  const identities = options.identities === undefined ? undefined : options.identities === '-' ? process.stdout : openOutput(options.identities);
  let phase = 'reading';
  const bar = createProgress({
    tty: size !== null && process.stderr.isTTY,
    barFormat: '{phase} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}',
    line: (value, total) =>
      phase === 'reading'
        ? `recompute: ${formatBytes(value)}${total > 0 ? ` of ${formatBytes(total)} (${Math.floor((100 * value) / total)}%)` : ''} read`
        : `recompute: ${value}${total > 0 ? ` of ${total}` : ''} events sessionized`,
    intervalMs: deps.progressIntervalMs,
  });

  let readBytes = 0;
  // Described invalid lines; held back while a progress bar owns the terminal.
  const invalidLines: string[] = [];
  const invalidReport = new InvalidLineReport();
  const report = (text: string) => (bar.isBar ? invalidLines.push(text) : process.stderr.write(text));
  bar.start(size ?? 0, { phase });
  const stats = await recomputeOrRefuse(options.input, input, output, {
    timeoutMs: options.timeoutMinutes * 60_000,
    maxBufferedEvents: options.bufferEvents,
    input: { format: options.format, keyEvents: options.keyEvents },
    identities,
    onReadBytes: (bytes) => {
      readBytes += bytes;
      bar.update(readBytes);
    },
    onInvalid: async (lineNumber, line, error) => {
      const text = invalidReport.add(lineNumber, error.message);
      if (text !== null) report(text);
      if (rejects) await rejects.write(JSON.stringify({ line: lineNumber, error: error.message, input: line }));
    },
    onSessionizeStart: (events) => {
      phase = 'sessionizing';
      bar.start(events, { phase });
    },
    onSessionized: (events) => bar.update(events),
  }).finally(() => bar.stop());
  await rejects?.close();
  for (const text of invalidLines) process.stderr.write(text);

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(invalidReport.summary(options.rejects));
  // Lines, and not one of them an event: the wrong file (or format), not a few bad lines.
  if (stats.events === 0 && stats.invalid > 0) {
    const expected =
      options.format === 'segment'
        ? 'Segment Spec messages, one JSON object per line (docs/segment.md)'
        : 'events NDJSON, one JSON object per line (schemas/event.schema.json; Segment messages need --format segment)';
    throw new NoValidEventsError(options.input === '-' ? 'stdin' : options.input, stats.lines, expected);
  }
  process.stderr.write(
    `recompute: ${stats.lines} lines, ${stats.events} valid events (${stats.duplicates} duplicates), ` +
      `${stats.invalid} invalid lines skipped; ${stats.sessions} sessions of ${stats.users} users` +
      `${identities ? `, ${stats.links} linked anonymous ids` : ''} in ${seconds}s\n`,
  );
  return stats;
}

/** `recompute`, with a refused binary input (stdin) reported as unreadable input (exit 2). */
async function recomputeOrRefuse(path: string, ...args: Parameters<typeof recompute>): Promise<RecomputeStats> {
  try {
    return await recompute(...args);
  } catch (err) {
    if (err instanceof BinaryInputError) throw new UnreadableInputError(path === '-' ? 'stdin' : path, err.reason);
    throw err;
  }
}

/** Opening the output truncates it: naming the input as output (or rejects) would erase it. */
function refuseOverwritingInput(options: RecomputeCommandOptions): void {
  if (options.identities === '-' && options.output === '-') throw new UsageError('--identities - and --output - would share stdout; give one of them a file');
  if (options.identities !== undefined && options.identities !== '-' && [options.output, options.rejects].some((p) => p && p !== '-' && resolvePath(p) === resolvePath(options.identities as string))) {
    throw new UsageError(`--identities ${options.identities} is also another output`);
  }
  if (options.input === '-') return;
  const input = resolvePath(options.input);
  for (const [flag, path] of [['--output', options.output], ['--rejects', options.rejects], ['--identities', options.identities]] as const) {
    if (path && path !== '-' && resolvePath(path) === input) throw new UsageError(`${flag} ${path} is the input file; it would be overwritten`);
  }
}

function openOutput(path: string): WriteStream | Writable {
  try {
    const fd = openSync(path, 'w');
    return createWriteStream('', { fd });
  } catch (err) {
    throw new UsageError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// recompute --since D --sink clickhouse
// ---------------------------------------------------------------------------------------------

export interface RecalculationCommandOptions {
  /** D, epoch ms (see `parseSince`). */
  sinceMs: number;
  /** T in minutes when given on the command line; else SESSION_TIMEOUT_MINUTES. */
  timeoutMinutes?: number;
  /** User keys per page. */
  pageUsers?: number;
  /** Only these user keys (a backfill's); default: every key with an event since D. */
  userKeys?: Iterable<string>;
  /** `--shard I/N`: only the user keys of shard I of N. */
  shard?: KeyShard;
  /** `--site S`: only the data of this site (no other site's is read or written). */
  site?: string;
}

/**
 * What to do about users left to the worker that it cannot finish (stored events in its part it
 * never applied), or null when there are none: the worker finishes the others by itself.
 */
export function unfinishedReport(stats: RecalculationStats, timeoutMs: number, latenessMs: number): string | null {
  const { users, examples, firstEventMs, rerunAfterMs } = stats.unfinished;
  if (users === 0) return null;
  return (
    `${users} of the users partly left to the worker (e.g. ${examples.join(', ')}) have stored events in the worker's part that it ` +
    `never applied (later than the allowed lateness when they arrived, or written to events directly), so it cannot finish them. ` +
    `Run "sessionizer recompute --since ${new Date(firstEventMs).toISOString()} --sink clickhouse" again once the worker's event time ` +
    `has passed ${new Date(rerunAfterMs).toISOString()} (the end of their sessions + T ${timeoutMs / 60_000} min + lateness ` +
    `${latenessMs / 60_000} min; with live traffic, that wall-clock time); that run finishes them, or reports what is still left.`
  );
}

/**
 * Runs the recalculation with clients made from `config`. SIGINT or SIGTERM stops it after the
 * page of users in progress (a second one stops at once; either way a rerun is safe). Returns the
 * stats; `interrupted` and `unsettled` tell the caller to exit with a failure.
 */
export async function runRecalculation(config: Config, options: RecalculationCommandOptions): Promise<RecalculationStats> {
  const started = Date.now();
  const timeoutMs = (options.timeoutMinutes ?? config.sessions.timeoutMs / 60_000) * 60_000;
  await preflight(config, { redis: true, clickhouse: true }, createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'recompute' }));
  const redis = defineStateCommands(createRedisClient(config.redis, { maxRetriesPerRequest: 3 }));
  redis.on('error', () => undefined); // a failing command rejects with the reason
  const clickhouse = createClickHouseClient(config.clickhouse, { application: 'sessionizer-recalc', requestTimeoutMs: 300_000 });

  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write('\nrecompute: stopping after the page in progress (again to stop at once; rerunning is safe)\n');
      controller.abort();
    } else {
      process.stderr.write('recompute: stopped; run it again to finish\n');
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const bar = createProgress({
    barFormat: '{phase} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}',
    line: (done, total) => `recompute: ${done}/${total} users`,
  });
  const warnings: string[] = [];
  const source = new ClickHouseSource(clickhouse, config.clickhouse.database);
  const counters = new UserCounterStore(redis, config.redis.keyPrefix, config.kafka.topics, config.redis.userRecordTtlSeconds);
  let stats: RecalculationStats;
  try {
    stats = await recalculate(
      { source, sink: new ClickHouseSink(clickhouse, config.clickhouse.database), counters },
      {
        sinceMs: options.sinceMs,
        timeoutMs,
        latenessMs: config.sessions.latenessMs,
        pageUsers: options.pageUsers,
        userKeys: options.userKeys,
        shard: options.shard,
        site: options.site,
        signal: controller.signal,
        onStart: (users) => bar.start(users, { phase: 'users' }),
        onProgress: (done) => bar.update(done),
        onWarning: (message) => (bar.isBar ? warnings.push(message) : process.stderr.write(`recompute: ${message}\n`)),
      },
    );
  } finally {
    bar.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    redis.disconnect();
    await clickhouse.close();
  }
  for (const message of warnings) process.stderr.write(`recompute: ${message}\n`);

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const since = new Date(options.sinceMs).toISOString();
  const shard =
    (options.site !== undefined ? `, site ${options.site}` : '') + (options.shard && options.shard.count > 1 ? `, shard ${options.shard.index}/${options.shard.count}` : '');
  process.stderr.write(
    `recompute: since ${since}${shard}, T = ${timeoutMs / 60_000} min: ${stats.users} of ${stats.totalUsers} users, ${stats.events} events ` +
      `(${stats.invalidEvents} invalid), ${stats.sessions} sessions: ${stats.unchanged} unchanged, ${stats.changed} changed, ` +
      `${stats.added} new, ${stats.vanished} removed; ${stats.rowsWritten} rows written, ${stats.countersAdjusted} worker counters set, ` +
      `${stats.leftToWorker} users partly left to the worker; ${seconds}s\n`,
  );
  const unfinished = unfinishedReport(stats, timeoutMs, config.sessions.latenessMs);
  if (unfinished) process.stderr.write(`recompute: ${unfinished}\n`);
  if (stats.interrupted) process.stderr.write(`recompute: interrupted after ${stats.users} of ${stats.totalUsers} users; run it again to finish\n`);
  return stats;
}
