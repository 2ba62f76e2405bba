/**
 * `sessionizer forget (--user-id X | --anonymous-id Y) (--dry-run | --yes)`: erases a person
 * (a GDPR erasure request).
 *
 * Who: `--user-id X` is the person behind a login: X itself, and every anonymous id (device)
 * seen with X — on an event, or in `identity_map` when that table exists. `--anonymous-id Y` is
 * one device or visitor: Y itself. The user keys found (X, the anonymous ids) are what the
 * worker keys its state and sessions by.
 *
 * What, in this order:
 * 1. Redis: each user key's state (or idle record) in every partition of the event topics, and
 *    its place in the close and forget queues; the partition's worker is fenced, so it does not write back a
 *    state it held in memory. Session rows committed to a partition's outbox but not yet
 *    confirmed in ClickHouse are inserted first, with the worker's own deduplication token, so
 *    they cannot land after the erasure.
 * 2. ClickHouse: rows of every MergeTree table of the database (events, sessions, the per-user
 *    roll-up, identity_map, person tables...) whose user_key, anonymous_id, user_id or person_id
 *    is one of the ids, by a synchronous mutation (`ALTER TABLE … DELETE`, waited for): when the
 *    command returns, no active part holds them. The server removes the replaced parts' files
 *    after its `old_parts_lifetime`, which the command reads and reports.
 *
 * Sites: only the rows and worker states of the given site (`--site`, needed when the data
 * holds several) are found and erased; the same id in another site is another person, untouched.
 *
 * What it cannot reach: the raw messages in the Kafka topics, which go when the topics'
 * retention passes (the command says so), and backups. Events of the person that arrive later
 * are sessionized again: stop them at the source first.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { LOCAL_SUFFIX } from '../clickhouse/cluster-schema';
import { createClickHouseClient } from '../clickhouse/client';
import { ClickHouseSink, outboxBody } from '../clickhouse/session-sink';
import { loadConfig, type Config } from '../config';
import { parseSiteOption, singleSite, sitesWithSessions } from '../clickhouse/site-scope';
import { UsageError } from '../errors';
import { DEFAULT_SITE, visitorKeyOf } from '../events/visitor-key';
import { createLogger, secretsOf } from '../observability/logger';
import { preflight } from '../preflight';
import { createRedisClient } from '../state/redis-client';
import { defineStateCommands } from '../state/script-loader';
import { UserCounterStore } from '../state/user-counters';

export interface ForgetCommandOptions {
  userId?: string;
  anonymousId?: string;
  /** The site of the id; needed when the data holds several sites. */
  site?: string;
  dryRun?: boolean;
  yes?: boolean;
}

/** Columns that identify a person, in any table of ours or of later versions. */
export const PERSON_COLUMNS = ['user_key', 'anonymous_id', 'user_id', 'person_id'] as const;

/** The column that says which site a row belongs to. */
const SITE_COLUMN = 'site';

export interface ForgetResult {
  /** The site erased in. */
  site: string;
  ids: string[];
  /** Rows matching per table (before deletion). */
  rows: Record<string, number>;
  redisStates: number;
  executed: boolean;
  oldPartsLifetimeSeconds: number | null;
}

export async function runForget(options: ForgetCommandOptions, deps: { config?: Config; write?: (text: string) => void } = {}): Promise<ForgetResult> {
  if ((options.userId === undefined) === (options.anonymousId === undefined)) throw new UsageError('forget: give exactly one of --user-id or --anonymous-id');
  const given = (options.userId ?? options.anonymousId) as string;
  if (given.trim() === '') throw new UsageError('forget: the id is empty');
  if (!options.dryRun && !options.yes) throw new UsageError('forget erases data for good: run it with --dry-run to see what it finds, then with --yes');
  if (options.dryRun && options.yes) throw new UsageError('forget: --dry-run and --yes exclude each other');
  const givenSite = parseSiteOption('forget', options.site);
  const config = deps.config ?? loadConfig();
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  const log = createLogger(config.logLevel, process.stderr, { secrets: secretsOf(config) }).child({ command: 'forget' });
  await preflight(config, { redis: true, clickhouse: true }, log);

  const { database } = config.clickhouse;
  const clickhouse = createClickHouseClient(config.clickhouse, { application: 'sessionizer-forget', requestTimeoutMs: 600_000 });
  const redis = defineStateCommands(
    createRedisClient(config.redis, { maxRetriesPerRequest: 3 }),
  );
  redis.on('error', () => undefined); // a failing command rejects with the reason
  try {
    // Only this site's rows and states: the same id in another site is another person.
    const site = singleSite('forget', givenSite, givenSite === undefined ? await sitesWithSessions(clickhouse, database) : []);
    const tables = withoutOtherSites(await personTables(clickhouse, database), site);
    const ids = await findIds(clickhouse, database, tables, options, site);
    const rows: Record<string, number> = {};
    // On a cluster the rows live in `T_local` on every node: count them through the Distributed `T`.
    const readName = (table: string) => (config.clickhouse.cluster && table.endsWith(LOCAL_SUFFIX) ? table.slice(0, -LOCAL_SUFFIX.length) : table);
    for (const [table, columns] of tables) rows[table] = await count(clickhouse, database, readName(table), columns, ids, site);
    const counters = new UserCounterStore(redis, config.redis.keyPrefix, config.kafka.topics, config.redis.userRecordTtlSeconds);
    // The worker keys its state by the visitor key of (site, user key).
    const keys = ids.map((id) => visitorKeyOf(site, id));
    const located = await counters.locate(keys);
    const redisStates = [...located.values()].reduce((n, list) => n + list.length, 0);
    const lifetime = await oldPartsLifetime(clickhouse);

    write(`forget: ${options.userId !== undefined ? `user_id ${given}` : `anonymous_id ${given}`} in site ${site}: ids ${ids.join(', ')}\n`);
    for (const [table, n] of Object.entries(rows)) write(`  ${database}.${table}: ${n} rows\n`);
    write(`  Redis: ${redisStates} worker states\n`);
    const result: ForgetResult = { site, ids, rows, redisStates, executed: false, oldPartsLifetimeSeconds: lifetime };
    if (options.dryRun) {
      write('forget: dry run, nothing erased; run again with --yes to erase\n');
      return result;
    }

    // 1. Redis first (fencing the worker), after sending what its outboxes still hold.
    const sink = new ClickHouseSink(clickhouse, database);
    const touched = new Set([...located.values()].flat().map((found) => `${found.partition.topic}:${found.partition.partition}`));
    for (const entry of await counters.pendingOutbox()) {
      if (touched.has(`${entry.partition.topic}:${entry.partition.partition}`)) await sink.insertSessions(outboxBody(entry.payload), entry.token);
    }
    // The visitor keys of the site: another site's state with the same ids is left alone.
    for (const partition of await counters.partitions()) await counters.forget(partition, keys);
    // 2. ClickHouse, every table that names the person, waited for.
    const onCluster = config.clickhouse.cluster ? ` ON CLUSTER '${config.clickhouse.cluster.replace(/'/g, "\\'")}'` : '';
    for (const [table, columns] of tables) {
      if (!rows[table]) continue;
      await clickhouse.command({
        query: `ALTER TABLE ${database}.${quoted(table)}${onCluster} DELETE WHERE ${condition(columns)} SETTINGS mutations_sync = 2`,
        query_params: { ids, site },
      });
    }
    const total = Object.values(rows).reduce((a, b) => a + b, 0);
    write(
      `forget: erased ${total} rows and ${redisStates} worker states. No active ClickHouse part holds them now; the server deletes the ` +
        `replaced parts' files within old_parts_lifetime (${lifetime === null ? 'unknown' : `${lifetime} s`}). The raw messages stay in ` +
        `the Kafka topics (${config.kafka.topics.join(', ')}, and ${config.kafka.deadLetterTopic}) until their retention passes.\n`,
    );
    return { ...result, executed: true };
  } finally {
    redis.disconnect();
    await clickhouse.close();
  }
}

/** MergeTree tables of the database with person columns, and which of those columns each has. */
async function personTables(client: ClickHouseClient, database: string): Promise<Map<string, string[]>> {
  const result = await client.query({
    query: `SELECT c.table AS table, groupArray(c.name) AS columns
            FROM system.columns AS c INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
            WHERE c.database = {database:String} AND c.name IN {names:Array(String)} AND t.engine LIKE '%MergeTree%'
            GROUP BY c.table ORDER BY c.table`,
    query_params: { database, names: [...PERSON_COLUMNS, SITE_COLUMN] },
    format: 'JSONEachRow',
  });
  const tables = new Map<string, string[]>();
  for (const row of await result.json<{ table: string; columns: string[] }>()) {
    // Includes the inner tables of materialized views without a TO table (`.inner_id.…`): they hold rows too.
    tables.set(row.table, row.columns.sort());
  }
  return tables;
}

/** A table name as a ClickHouse identifier (inner tables' names have dots and dashes). */
function quoted(table: string): string {
  return `\`${table.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/**
 * Tables whose rows may be the site's: those with a `site` column (filtered on it), and those
 * without, which predate sites and so hold site `default`'s rows only.
 */
function withoutOtherSites(tables: Map<string, string[]>, site: string): Map<string, string[]> {
  const kept = new Map<string, string[]>();
  for (const [table, columns] of tables) {
    const persons = columns.filter((c) => c !== SITE_COLUMN);
    if (persons.length === 0) continue;
    if (columns.includes(SITE_COLUMN) || site === DEFAULT_SITE) kept.set(table, columns);
  }
  return kept;
}

/** The rows of the ids, within the site when the table has a site column. */
function condition(columns: readonly string[]): string {
  const ids = columns.filter((c) => c !== SITE_COLUMN).map((c) => `${c} IN {ids:Array(String)}`).join(' OR ');
  return columns.includes(SITE_COLUMN) ? `${SITE_COLUMN} = {site:String} AND (${ids})` : ids;
}

async function count(client: ClickHouseClient, database: string, table: string, columns: readonly string[], ids: readonly string[], site: string): Promise<number> {
  const result = await client.query({ query: `SELECT count() AS n FROM ${database}.${quoted(table)} WHERE ${condition(columns)}`, query_params: { ids, site }, format: 'JSONEachRow' });
  const [row] = await result.json<{ n: string }>();
  return Number(row?.n ?? 0);
}

/** The given id plus, for a user id, every anonymous id linked to it (events, identity_map). */
async function findIds(client: ClickHouseClient, database: string, tables: Map<string, string[]>, options: ForgetCommandOptions, site: string): Promise<string[]> {
  const ids = new Set<string>([(options.userId ?? options.anonymousId) as string]);
  if (options.userId === undefined) return [...ids];
  const sources: string[] = [];
  // `has`: the table, or on a cluster its `_local` table under a Distributed one of the plain name.
  const has = (name: string) => tables.has(name) || tables.has(`${name}${LOCAL_SUFFIX}`);
  // Within the site: a link or a session of the same user id in another site is another person's.
  const inSite = 'site = {site:String} AND';
  if (has('events')) sources.push(`SELECT DISTINCT user_key AS id FROM ${database}.events WHERE ${inSite} user_id = {userId:String}`);
  // identity_map: a table of its own in older layouts, a view over identity_links (013_people.sql) now.
  if ((tables.get('identity_map')?.includes('user_id') && tables.get('identity_map')?.includes('anonymous_id')) || has('identity_links')) {
    sources.push(`SELECT DISTINCT anonymous_id AS id FROM ${database}.identity_map WHERE ${inSite} user_id = {userId:String}`);
  }
  if (has('sessions')) sources.push(`SELECT DISTINCT user_key AS id FROM ${database}.sessions WHERE ${inSite} user_id = {userId:String}`);
  for (const query of sources) {
    const result = await client.query({ query, query_params: { userId: options.userId, site }, format: 'JSONEachRow' });
    for (const row of await result.json<{ id: string }>()) if (row.id !== '') ids.add(row.id);
  }
  return [...ids].sort();
}

async function oldPartsLifetime(client: ClickHouseClient): Promise<number | null> {
  try {
    const result = await client.query({ query: "SELECT value FROM system.merge_tree_settings WHERE name = 'old_parts_lifetime'", format: 'JSONEachRow' });
    const [row] = await result.json<{ value: string }>();
    return row ? Number(row.value) : null;
  } catch {
    return null;
  }
}
