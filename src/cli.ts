#!/usr/bin/env node
/**
 * The `sessionizer` command line (README.md, "What you get"). Exit codes: 0 success, 1 runtime failure, 2 bad
 * usage or an unreadable input, with a one-line reason on stderr.
 */
import { installLastResortHandlers } from './observability/last-resort';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError, Help, InvalidArgumentError, Option } from 'commander';
// Only what building the program needs is imported here: names and argument parsers from
// modules without clients. Each command's module (kafkajs, ioredis, @clickhouse/client, zod,
// fastify...) is loaded by its action, so `--help`, `--version` and a usage error start fast.
import { REPORT_FORMATS } from './clickhouse/report-format';
import { REPORT_DIMENSIONS } from './clickhouse/report-queries';
import { parsePositions, parseReportDay, parseSince } from './commands/command-arguments';
import { PERSON_DIMENSIONS } from './people/people-report';
import { parseKeyShard } from './recalc/key-shard';
import { parseSite } from './commands/site-option';
import { SessionizerError, UsageError } from './errors';

/** The package's version, from the nearest package.json above this file (src/, dist/ or another build folder). */
function packageVersion(): string {
  for (let dir = __dirname, parent = dirname(dir); ; dir = parent, parent = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sessionizer' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look one level up
    }
    if (parent === dir) return 'unknown';
  }
}
const PACKAGE_VERSION = packageVersion();

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function positiveInteger(value: string): number {
  const n = positiveNumber(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a share between 0 and 1');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

/** A comma-separated list of names; spaces inside a name are kept ("Order Completed"). */
function parseNameList(value: string): string[] {
  return value.split(',').map((name) => name.trim()).filter(Boolean);
}

/** Exit code chosen by a command that finishes on its own terms (the worker). */
let commandExitCode = EXIT_OK;

export function buildProgram(): Command {
  const program = new Command('sessionizer')
    .description('Turns product events into analytics sessions.')
    .version(PACKAGE_VERSION, '-V, --version', 'print the version and exit')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    // Commander lists a mandatory option like any other: say which ones must be given.
    .configureHelp({
      optionDescription(option: Option): string {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `(required) ${text}` : text;
      },
    })
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  program
    .command('recompute')
    .description(
      'offline: read events NDJSON (--input), write one session per line, sorted by site, user_key, then started_at; ' +
        'or, with --since D --sink clickhouse, recalculate the sessions of every user with an event since D from the ' +
        'events table into ClickHouse, writing only the difference (configuration from the environment, like the worker)',
    )
    .option('--input <file>', '(required, unless --since and --sink are given) events NDJSON file, or - for stdin')
    .option('--output <file>', 'sessions NDJSON file, or - for stdout', '-')
    .addOption(
      new Option('--timeout-minutes <n>', 'session timeout T in minutes (default: SESSION_TIMEOUT_MINUTES, else 30)').argParser(positiveNumber),
    )
    .option('--rejects <file>', 'write each invalid line, with its number and reason, to this NDJSON file')
    .option(
      '--identities <file>',
      'also write the identity map, from the same pass: for each anonymous_id with a link (an event with both ids), ' +
        'the user_id of its latest link, as NDJSON {"site","anonymous_id","user_id","linked_at"} sorted by site, then anonymous_id (- for stdout)',
    )
    .addOption(
      new Option('--format <format>', 'what the input lines are: events of our own format, or Segment Spec messages (docs/segment.md)')
        .choices(['events', 'segment'])
        .default('events'),
    )
    .option('--key-events <names>', 'with --format segment: comma-separated track event names that are key events (as KEY_EVENTS)', parseNameList)
    .addOption(
      new Option('--buffer-events <n>', 'events sorted in memory at once (per thread); beyond that, sorted runs go to disk')
        .argParser(positiveInteger)
        .default(200_000),
    )
    .option('--since <date>', 'with --sink clickhouse: recalculate from D, YYYY-MM-DD (UTC) or an ISO-8601 date-time with a zone', parseSince)
    .addOption(new Option('--sink <sink>', 'write the recalculation to ClickHouse instead of NDJSON (needs --since)').choices(['clickhouse']))
    .addOption(new Option('--page-users <n>', 'with --sink: user keys recalculated per page').argParser(positiveInteger).default(500))
    .addOption(
      new Option('--shard <I/N>', 'with --sink: only the user keys with cityHash64(user_key) % N = I (run I = 0 … N-1 in parallel)').argParser(
        parseKeyShard,
      ),
    )
    .addOption(new Option('--site <site>', "with --sink: only this site's data (no other site's is read or written)").argParser(parseSite))
    .action(async (options, command: Command) => {
      const given = (name: string) => command.getOptionValueSource(name) === 'cli';
      if (options.shard !== undefined && options.sink === undefined) throw new UsageError('recompute: --shard needs --since DATE --sink clickhouse');
      if (options.site !== undefined && options.sink === undefined) throw new UsageError('recompute: --site needs --since DATE --sink clickhouse');
      if (options.sink === undefined && options.since === undefined) {
        if (options.input === undefined) throw new UsageError('recompute needs --input FILE|-, or --since DATE --sink clickhouse');
        if (options.keyEvents !== undefined && options.format !== 'segment') throw new UsageError('recompute: --key-events needs --format segment');
        const [{ runRecompute }, { loadSessionTimeoutMinutes }] = await Promise.all([import('./commands/recompute-command'), import('./config')]);
        // Like every other command, T comes from SESSION_TIMEOUT_MINUTES unless the flag says otherwise.
        await runRecompute({ ...options, timeoutMinutes: given('timeoutMinutes') ? options.timeoutMinutes : loadSessionTimeoutMinutes() });
        return;
      }
      if (options.sink === undefined) throw new UsageError('recompute: --since needs --sink clickhouse');
      if (options.since === undefined) throw new UsageError('recompute: --sink clickhouse needs --since DATE');
      const fileOnly = {
        input: '--input',
        output: '--output',
        rejects: '--rejects',
        bufferEvents: '--buffer-events',
        format: '--format',
        keyEvents: '--key-events',
        identities: '--identities',
      };
      const misplaced = Object.entries(fileOnly).filter(([name]) => given(name));
      if (misplaced.length > 0) {
        throw new UsageError(`recompute: --since/--sink read the events table; ${misplaced.map(([, flag]) => flag).join(', ')} apply to files only`);
      }
      const [{ runRecalculation }, { loadConfig }] = await Promise.all([import('./commands/recompute-command'), import('./config')]);
      const stats = await runRecalculation(loadConfig(), {
        sinceMs: options.since,
        timeoutMinutes: given('timeoutMinutes') ? options.timeoutMinutes : undefined,
        pageUsers: options.pageUsers,
        shard: options.shard,
        site: options.site,
      });
      if (stats.interrupted || stats.unsettled.length > 0) commandExitCode = EXIT_FAILURE;
    });

  program
    .command('worker')
    .description('consume the event topics and write sessions to ClickHouse (configuration from the environment, see README)')
    .action(async () => {
      const [{ runWorker }, { loadConfig }] = await Promise.all([import('./commands/worker-command'), import('./config')]);
      // Client libraries may keep sockets or timers alive after a shutdown, or after a start
      // that failed half-way; the worker's work is done and flushed here (or never began), so
      // leave now with its exit code, never as a half-started process.
      process.exit(await runServerCommand(() => runWorker(loadConfig())));
    });

  program
    .command('collect')
    .description(
      "first-party HTTP collector: Segment's tracking API (POST /v1/track|page|screen|identify|group|alias|batch) and the " +
        'browser script /s.js on COLLECT_PORT, producing events to Kafka; cookieless ids, enrichment (configuration from the environment, see docs/collect.md)',
    )
    .action(async () => {
      const [{ runCollect }, { loadConfig }] = await Promise.all([import('./commands/collect-command'), import('./config')]);
      // The collector drained and closed its clients (or never started them); leave with its exit code.
      process.exit(await runServerCommand(() => runCollect(loadConfig())));
    });

  const dashboard = program
    .command('dashboard')
    .description(
      'the web dashboard and the Plausible-compatible Stats API (POST /api/v2/query) over ClickHouse, on DASHBOARD_PORT; ' +
        'accounts, API keys and shared links from DASHBOARD_CONFIG (configuration from the environment, see docs/dashboard.md)',
    )
    .action(async () => {
      const [{ runDashboard }, { loadConfig }] = await Promise.all([import('./commands/dashboard-command'), import('./config')]);
      commandExitCode = await runDashboard(loadConfig());
      process.exit(commandExitCode);
    });
  dashboard
    .command('hash-secret')
    .description(
      'print the hash of a password, API key or shared-link token for the dashboard access file: ' +
        'printf %s SECRET | sessionizer dashboard hash-secret (one trailing newline is ignored)',
    )
    .option('--generate', 'make a random secret (for an API key or a shared link) and print it, then its hash')
    .action(async (options: { generate?: boolean }) => {
      const { runHashSecret } = await import('./commands/dashboard-command');
      await runHashSecret(options);
    });

  program
    .command('migrate')
    .description('create or upgrade the ClickHouse schema (CLICKHOUSE_URL, CLICKHOUSE_DATABASE, CLICKHOUSE_CLUSTER)')
    .action(async () => {
      const { runMigrate } = await import('./commands/migrate-command');
      await runMigrate();
    });

  program
    .command('reset')
    .description(
      "start the worker pool over: delete its Redis state for the topics and, with --offsets, move the consumer group's " +
        'offsets to the earliest (the workers must be stopped). --dry-run shows what it would do; --yes does it',
    )
    .option('--dry-run', '(required: this or --yes) print what would be deleted and moved; change nothing; works while workers run')
    .option('--yes', '(required: this or --dry-run) do it (the workers must be stopped)')
    .option('--topics <list>', 'comma-separated topics (default: KAFKA_TOPICS)', (value: string) => value.split(',').map((t) => t.trim()).filter(Boolean))
    .option('--offsets', "also reset the group's committed offsets to the earliest")
    .action(async (options) => {
      const { runReset } = await import('./commands/reset-command');
      await runReset(options);
    });

  const deadLetters = program
    .command('dead-letters')
    .description('inspect the dead-letter topic (KAFKA_DEAD_LETTER_TOPIC) and replay what the worker rejected');
  const selection = (command: Command) =>
    command
      .option('--reason <text>', 'only messages whose reason contains this text (case-insensitive)')
      .option('--source-topic <topic>', 'only messages that came from this topic')
      .option('--at <list>', 'only these messages, as PARTITION:OFFSET of the dead-letter topic, comma-separated', parsePositions)
      .addOption(new Option('--limit <n>', 'at most this many messages, oldest first').argParser(positiveInteger));
  selection(deadLetters.command('list').description('print the dead letters with their reasons and sources'))
    .option('--site <site>', "only dead letters of this site (the event's own site, else its source topic's)")
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'ndjson']).default('table'))
    .action(async (options) => {
      const { runDeadLettersList } = await import('./commands/dead-letters-command');
      await runDeadLettersList(options);
    });
  selection(deadLetters.command('replay').description('send selected dead letters, unchanged, back to the event topic they came from'))
    .option('--all', 'every dead letter (when no selection is given)')
    .option('--site <site>', "only dead letters of this site (the event's own site, else its source topic's)")
    .option('--to <topic>', 'send to this topic instead of each message’s source topic')
    .option('--dry-run', '(required: this or --yes) print what would be sent; send nothing')
    .option('--yes', '(required: this or --dry-run) send them')
    .action(async (options) => {
      const { runDeadLettersReplay } = await import('./commands/dead-letters-command');
      await runDeadLettersReplay(options);
    });

  program
    .command('forget')
    .description(
      "erase a person (GDPR): their events, sessions, identity links and the worker's state for them. --user-id also " +
        'erases the anonymous ids (devices) seen with it. --dry-run shows what it finds; --yes erases',
    )
    .option('--user-id <id>', '(required: this or --anonymous-id) a known user id, with every anonymous id linked to it')
    .option('--anonymous-id <id>', '(required: this or --user-id) one anonymous id (device or visitor)')
    .option('--site <site>', 'the site the id belongs to (needed when the data holds several sites); nothing of another site is touched')
    .option('--dry-run', '(required: this or --yes) count what would be erased; change nothing')
    .option('--yes', '(required: this or --dry-run) erase it')
    .action(async (options) => {
      const { runForget } = await import('./commands/forget-command');
      await runForget(options);
    });

  program
    .command('report')
    .description(
      'sessions, users, engagement, bounce, duration and views per day (UTC) from ClickHouse, for the last 30 days ' +
        'unless --from/--to say otherwise; with --people, people, new and returning people, sessions per person and the cross-device share',
    )
    .option('--from <date>', 'first day, YYYY-MM-DD (default: 29 days before --to: the last 30 days)', parseReportDay)
    .option('--to <date>', 'last day, YYYY-MM-DD, inclusive (default: today, UTC)', parseReportDay)
    .addOption(
      new Option('--by <dimension>', 'group each day by this dimension (first_* are person dimensions, with --people)').choices([
        ...REPORT_DIMENSIONS,
        ...PERSON_DIMENSIONS,
      ]),
    )
    .option('--people', 'person-level numbers: people (across devices and ids), new vs returning, sessions per person, cross-device share')
    .option('--site <site>', 'only this site (default: the one site in the data; with several, every site, by site)')
    .addOption(new Option('--format <format>', 'output format').choices(REPORT_FORMATS).default('table'))
    .action(async (options) => {
      const { runReport } = await import('./commands/report-command');
      await runReport(options);
    });

  program
    .command('audience')
    .description(
      'export the people (persons in ClickHouse) who match every filter given, as NDJSON or CSV to a file or stdout, ' +
        'or into a new ClickHouse table; --count prints only how many (configuration from the environment)',
    )
    .option('--site <site>', 'the site whose people to export (needed when the data holds several sites)')
    .option('--since <date>', 'seen since D: YYYY-MM-DD (UTC) or an ISO-8601 date-time with a zone')
    .option('--min-sessions <n>', 'at least N sessions')
    .option('--engaged', 'at least one engaged session')
    .option('--converted', 'at least one session with a key event')
    .option('--source <value>', 'campaign or referral source (see --touch)')
    .option('--medium <value>', 'medium (see --touch)')
    .option('--campaign <value>', 'campaign name (see --touch)')
    .option('--touch <which>', 'which sessions --source/--medium/--campaign match: first (the first session), last, or any', 'first')
    .option('--channel <channel>', 'seen on this channel: web, app, server or store')
    .option('--country <code>', 'seen in this country (ISO 3166-1 alpha-2)')
    .option('--device-type <type>', 'seen on this device type (desktop, mobile, …)')
    .option('--format <format>', 'ndjson or csv (with a header line)')
    .option('--output <file>', 'file to write, or - for stdout (the default)')
    .option('--into-table <name>', 'create this table in the configured database with the people, instead of writing a file')
    .option('--replace', 'with --into-table: replace a table of that name')
    .option('--count', 'print only the number of people')
    .action(async (options) => {
      const { runAudience } = await import('./commands/audience-command');
      await runAudience(options);
    });

  program
    .command('produce')
    .description(
      'send events NDJSON to Kafka (the first of KAFKA_TOPICS), one message per line, keyed by user key ' +
        '(anonymous_id, else user_id). JSON objects are sent as they are (the worker dead-letters invalid events); ' +
        'lines that are not JSON objects, or over 64 KiB, are skipped and reported with their line numbers',
    )
    .requiredOption('--input <file>', 'events NDJSON file, or - for stdin')
    .option('--topic <name>', 'topic to send to (default: the first of KAFKA_TOPICS)')
    .option('--redate', 'move every timestamp by the same amount so the newest event is a minute old (try the shipped examples with "last 30 days" queries)')
    .option(
      '--backfill',
      'history instead of live traffic: validate each line, write the valid events to the ClickHouse events table (not Kafka), ' +
        'then recalculate the sessions of the users in the file from its earliest event (as recompute --since; see docs/recalculation.md)',
    )
    .addOption(
      new Option('--site <site>', "with --backfill: the site of the file's events that name none; lines of another site are skipped, and only this site is recalculated").argParser(
        parseSite,
      ),
    )
    .action(async (options) => {
      if (options.site !== undefined && !options.backfill) throw new UsageError('produce: --site needs --backfill (live events carry their site, or their topic gives it: KAFKA_TOPIC_SITES)');
      if (options.backfill) {
        if (options.topic !== undefined) throw new UsageError('produce: --backfill writes to ClickHouse, not to a topic; drop --topic');
        if (options.redate) throw new UsageError('produce: --redate is for live traffic; --backfill loads history at its own dates');
        const { runBackfill } = await import('./commands/backfill-command');
        const stats = await runBackfill({ input: options.input, site: options.site });
        const recalculation = stats.recalculation;
        if (recalculation && (recalculation.interrupted || recalculation.unsettled.length > 0)) commandExitCode = EXIT_FAILURE;
        return;
      }
      const { runProduce } = await import('./commands/produce-command');
      await runProduce(options);
    });

  program
    .command('loadgen')
    .description(
      'send live synthetic traffic to Kafka: --rate events per second for --duration seconds from --users visitors, ' +
        'with duplicates and out-of-order arrival, timestamps near now',
    )
    .addOption(new Option('--users <n>', 'number of simulated visitors').argParser(positiveInteger).default(1000))
    .addOption(new Option('--rate <n>', 'events per second').argParser(positiveNumber).default(100))
    .addOption(new Option('--duration <seconds>', 'how long to send').argParser(positiveNumber).default(60))
    .addOption(new Option('--seed <n>', 'seed of the generator (same seed, same traffic shape)').argParser(positiveInteger).default(1))
    .addOption(new Option('--duplicate-rate <share>', 'share of events sent twice').argParser(share).default(0.02))
    .addOption(new Option('--disorder-seconds <n>', 'events arrive up to this many seconds out of order').argParser(nonNegativeNumber).default(5))
    .addOption(new Option('--invalid-rate <share>', 'share of events with an invalid timestamp (dead-letter traffic)').argParser(share).default(0))
    .option('--topic <name>', 'topic to send to (default: the first of KAFKA_TOPICS)')
    .action(async (options) => {
      const { runLoadgen } = await import('./commands/loadgen-command');
      await runLoadgen(options);
    });

  return program;
}

/**
 * A long-running command (worker, collect) to its exit code: a failure to start (a port in use,
 * a service missing, bad configuration) is reported as one line here, where the caller can
 * still exit the process, because the clients opened so far may keep it alive.
 */
async function runServerCommand(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    return reportFailure(err);
  }
}

/** Writes the one-line reason of a failed command on stderr and returns its exit code. */
function reportFailure(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are successful exits; everything else commander rejects is usage.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT_OK;
    return EXIT_USAGE;
  }
  if (err instanceof SessionizerError && (err.code === 'BAD_USAGE' || err.code === 'UNREADABLE_INPUT' || err.code === 'INVALID_CONFIG')) {
    process.stderr.write(`sessionizer: ${err.message}\n`);
    return EXIT_USAGE;
  }
  process.stderr.write(`sessionizer: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILURE;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    commandExitCode = EXIT_OK;
    await program.parseAsync(argv);
    return commandExitCode;
  } catch (err) {
    return reportFailure(err);
  }
}

if (require.main === module) {
  installLastResortHandlers();
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sessionizer: ${String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
