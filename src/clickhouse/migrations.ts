/**
 * Applies the schema files `schemas/clickhouse/NNN_<change>.sql` in order, once each, and
 * records them in `<database>.schema_migrations` with the SHA-256 of their text.
 *
 * Rules the files follow (a unit test checks them):
 * - every statement is idempotent (`CREATE ... IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`, ...),
 *   so running a file twice, or from two workers at once, is harmless;
 * - `{database}` and `{on_cluster}` are replaced by the configured database and by
 *   `ON CLUSTER '<name>'` (or nothing); on a cluster each statement is then laid out as
 *   replicated local tables under Distributed ones (src/clickhouse/cluster-schema.ts);
 * - a file is never edited once applied: a changed checksum makes `migrate` refuse to run.
 *   Change the schema with a new file.
 * - a later file may declare an existing table again (`CREATE TABLE IF NOT EXISTS`) with another
 *   sorting key: the table is then rebuilt under that key, resumably (src/clickhouse/rebuild-table.ts).
 *
 * Several runners at once: each runs the same idempotent statements, and each records a file
 * with `insert_deduplication_token = name:checksum`, so the ledger keeps one row per file
 * (the table is also a ReplacingMergeTree on (name, checksum) as a second guard).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { PLAIN_IDENTIFIER } from './client';
import {
  DEFAULT_REPLICA_NAME,
  DEFAULT_REPLICATED_PATH,
  objectKinds,
  renderForCluster,
  type ClusterLayout,
  type ObjectKind,
} from './cluster-schema';
import { rebuildIfKeyChanged, RebuildError } from './rebuild-table';

/** `schemas/clickhouse` of this package: two levels above both src/clickhouse and dist/clickhouse. */
export const DEFAULT_SCHEMA_DIR = path.resolve(__dirname, '..', '..', 'schemas', 'clickhouse');

/** Creates the ledger; run before anything else on every run, then recorded like the others. */
export const BOOTSTRAP_FILE = '000_schema_migrations.sql';

const FILE_NAME = /^(\d+)_[A-Za-z0-9_-]+\.sql$/;

export interface SchemaFile {
  name: string;
  /** The numeric prefix, which orders the files. */
  number: number;
  /** SHA-256 of the file's bytes, hex. */
  checksum: string;
  sql: string;
}

export interface AppliedMigration {
  name: string;
  checksum: string;
  appliedAt: string;
}

export interface MigrationTarget {
  database: string;
  /** Cluster for `ON CLUSTER`, sharding and replication; "" or absent for a single server. */
  cluster?: string;
  /** Keeper path of replicated tables (cluster only); `/clickhouse/tables/{shard}/{database}/{table}` by default. */
  replicatedPath?: string;
  /** Replica name of replicated tables (cluster only); `{replica}` by default. */
  replicaName?: string;
  /** Folder of the schema files; the package's `schemas/clickhouse` by default. */
  schemaDir?: string;
}

export interface MigrateResult {
  database: string;
  /** Files applied by this run, in order. */
  applied: string[];
  /** Files that were applied before (by this or another runner). */
  alreadyApplied: string[];
}

export type MigrateLog = (message: string) => void;

export interface MigrateOptions {
  /**
   * Called after each statement the server ran, with the file and the statement. Tests throw
   * from it to stop a run midway (as a kill would) and check that the next run finishes the work.
   */
  afterStatement?: (file: string, statement: string) => void | Promise<void>;
}

/** The schema cannot be migrated as it stands (an applied file was edited, a bad file name). */
export class MigrationError extends Error {
  /** Retrying cannot fix it: a person has to. */
  readonly retriable = false;

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MigrationError';
  }
}

/**
 * Files whose comments alone were reworded after they shipped, with the checksums they shipped
 * with: their statements are unchanged, so a database that applied the former text has applied
 * this one. Never list a file whose statements changed.
 */
const REWORDED_COMMENTS: Readonly<Record<string, readonly string[]>> = {
  '001_sessions.sql': ['6316d98b3a3940a6b8a82fececee87c24fa456f614ea4b00162467ad46624020'],
  '002_events.sql': ['ced67d959aaf330355d73ffc87bbce82681bb389b67a60c469c10c1ebcfa6427'],
};

export function checksumOf(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The schema files of a folder, ordered by number; rejects bad names and duplicate numbers. */
export function readSchemaFiles(dir: string): SchemaFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new MigrationError(`cannot read schema folder ${dir}: ${(err as Error).message}`);
  }
  return orderSchemaFiles(
    names
      .filter((name) => name.endsWith('.sql'))
      .map((name) => {
        const bytes = readFileSync(path.join(dir, name));
        return { name, checksum: checksumOf(bytes), sql: bytes.toString('utf8') };
      }),
  );
}

/** Orders files by their numeric prefix; every name must be `NNN_<change>.sql`, every number unique. */
export function orderSchemaFiles(files: readonly Omit<SchemaFile, 'number'>[]): SchemaFile[] {
  const numbered = files.map((file) => {
    const match = FILE_NAME.exec(file.name);
    if (!match) throw new MigrationError(`schema file ${file.name}: expected a name like 004_add_column.sql`);
    return { ...file, number: Number(match[1]) };
  });
  numbered.sort((a, b) => a.number - b.number || a.name.localeCompare(b.name));
  for (let i = 1; i < numbered.length; i += 1) {
    const [previous, current] = [numbered[i - 1] as SchemaFile, numbered[i] as SchemaFile];
    if (previous.number === current.number) {
      throw new MigrationError(`schema files ${previous.name} and ${current.name} share the number ${current.number}`);
    }
  }
  return numbered;
}

export interface MigrationPlan {
  pending: SchemaFile[];
  alreadyApplied: SchemaFile[];
  /** Recorded in the database but not among the files (written by a newer release). */
  unknown: string[];
}

/**
 * Decides what to run. Throws `MigrationError` listing every applied file whose text changed
 * since (or that was recorded with two different checksums by runners of different releases).
 */
export function planMigrations(files: readonly SchemaFile[], applied: readonly AppliedMigration[]): MigrationPlan {
  const checksums = new Map<string, Set<string>>();
  for (const record of applied) {
    const set = checksums.get(record.name) ?? new Set<string>();
    set.add(record.checksum);
    checksums.set(record.name, set);
  }
  const problems: string[] = [];
  const plan: MigrationPlan = { pending: [], alreadyApplied: [], unknown: [] };
  for (const file of files) {
    const recorded = checksums.get(file.name);
    if (!recorded) {
      plan.pending.push(file);
    } else if ([...recorded].every((c) => c === file.checksum || REWORDED_COMMENTS[file.name]?.includes(c))) {
      plan.alreadyApplied.push(file);
    } else {
      const was = [...recorded].map((c) => c.slice(0, 12)).join(', ');
      problems.push(`${file.name} was applied with checksum ${was} but now has ${file.checksum.slice(0, 12)}`);
    }
  }
  const known = new Set(files.map((file) => file.name));
  plan.unknown = [...checksums.keys()].filter((name) => !known.has(name)).sort();
  if (problems.length > 0) {
    throw new MigrationError(
      `refusing to migrate: ${problems.join('; ')}. Applied schema files must not be edited; ` +
        'restore them and put the change in a new file',
    );
  }
  return plan;
}

/** `ON CLUSTER '<name>'`, or "" without a cluster. A quoted name may hold macros like `{cluster}`. */
export function onClusterClause(cluster: string | undefined): string {
  if (!cluster) return '';
  return `ON CLUSTER ${quoteString(cluster)}`;
}

/** Replaces the placeholders `{database}` and `{on_cluster}`. */
export function renderSchema(sql: string, target: Pick<MigrationTarget, 'database' | 'cluster'>): string {
  return sql.replace(/\{database\}/g, target.database).replace(/\{on_cluster\}/g, onClusterClause(target.cluster));
}

/**
 * The statements to run for a file: on one server, the file's own; on a cluster, each laid out
 * as replicated and Distributed tables. `kinds` (from `schemaObjectKinds`) is only read on a cluster.
 */
export function renderStatements(
  sql: string,
  target: Pick<MigrationTarget, 'database' | 'cluster' | 'replicatedPath' | 'replicaName'>,
  kinds: ReadonlyMap<string, ObjectKind> = new Map(),
): string[] {
  return renderSteps(sql, target, kinds).flatMap((step) => step.statements);
}

/** One statement of a file (placeholders filled), and what is run for it (its cluster layout). */
export interface RenderedStep {
  source: string;
  statements: string[];
}

export function renderSteps(
  sql: string,
  target: Pick<MigrationTarget, 'database' | 'cluster' | 'replicatedPath' | 'replicaName'>,
  kinds: ReadonlyMap<string, ObjectKind> = new Map(),
): RenderedStep[] {
  const sources = splitStatements(renderSchema(sql, target));
  const layout = clusterLayoutOf(target);
  return sources.map((source) => ({ source, statements: layout ? renderForCluster(source, layout, kinds) : [source] }));
}

/** The cluster layout of a target, or undefined for a single server. */
export function clusterLayoutOf(target: Pick<MigrationTarget, 'cluster' | 'replicatedPath' | 'replicaName'>): ClusterLayout | undefined {
  if (!target.cluster) return undefined;
  return {
    cluster: target.cluster,
    replicatedPath: target.replicatedPath ?? DEFAULT_REPLICATED_PATH,
    replicaName: target.replicaName ?? DEFAULT_REPLICA_NAME,
  };
}

/** What each table and view of the schema is on a cluster (ledger, sharded, roll-up, view). */
export function schemaObjectKinds(files: readonly SchemaFile[], target: Pick<MigrationTarget, 'database' | 'cluster'>): Map<string, ObjectKind> {
  // Rendered with some cluster, so the statements have the shape the renderer reads.
  const rendered = { database: target.database, cluster: target.cluster || 'cluster' };
  return objectKinds(files.flatMap((file) => splitStatements(renderSchema(file.sql, rendered))));
}

/**
 * Splits a file into statements at top-level `;`, dropping comments. Knows ClickHouse's
 * quoting: '…' strings (with `\` escapes and doubled quotes), "…" and `…` identifiers,
 * `--` line comments and block comments.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  const flush = () => {
    const statement = current.trim();
    if (statement !== '') statements.push(statement);
    current = '';
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      current += ' ';
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) throw new MigrationError('unterminated /* comment');
      i = end + 2;
      current += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      const end = closingQuote(sql, i);
      current += sql.slice(i, end + 1);
      i = end + 1;
    } else if (c === ';') {
      flush();
      i += 1;
    } else {
      current += c;
      i += 1;
    }
  }
  flush();
  return statements;
}

function closingQuote(sql: string, start: number): number {
  const quote = sql[start];
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i;
    } else {
      i += 1;
    }
  }
  throw new MigrationError(`unterminated ${quote} quote`);
}

function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Error names that only say an `IF NOT EXISTS` lost a race with another runner. */
const ALREADY_EXISTS = new Set(['TABLE_ALREADY_EXISTS', 'DATABASE_ALREADY_EXISTS']);

/**
 * Creates the database when missing, then applies every schema file not applied yet, in order.
 * Throws `MigrationError` (nothing applied) when an applied file was edited.
 */
export async function migrate(
  client: ClickHouseClient,
  target: MigrationTarget,
  log: MigrateLog = () => undefined,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const { database } = target;
  if (!PLAIN_IDENTIFIER.test(database)) throw new MigrationError(`database name '${database}' is not a plain identifier`);
  const files = readSchemaFiles(target.schemaDir ?? DEFAULT_SCHEMA_DIR);
  const bootstrap = files.find((file) => file.name === BOOTSTRAP_FILE);
  if (!bootstrap) throw new MigrationError(`schema folder has no ${BOOTSTRAP_FILE}`);

  // Every file is rendered before anything runs: a statement the cluster layout cannot take
  // stops the run with nothing applied.
  const kinds = schemaObjectKinds(files, target);
  const rendered = new Map<SchemaFile, RenderedStep[]>();
  for (const file of files) {
    try {
      rendered.set(file, renderSteps(file.sql, target, kinds));
    } catch (err) {
      throw new MigrationError(`${file.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  const apply = (file: SchemaFile) =>
    applyFile({ client, database, cluster: clusterLayoutOf(target), kinds, options }, file, rendered.get(file) ?? []);

  await run(client, `CREATE DATABASE IF NOT EXISTS ${database} ${onClusterClause(target.cluster)}`);
  await apply(bootstrap);

  const plan = planMigrations(files, await appliedMigrations(client, database));
  if (plan.unknown.length > 0) {
    log(`database ${database} records schema files this release does not have: ${plan.unknown.join(', ')}`);
  }
  for (const file of plan.pending) {
    const started = Date.now();
    if (file !== bootstrap) await apply(file);
    await record(client, database, file);
    log(`applied ${file.name} in ${Date.now() - started} ms`);
  }
  return {
    database,
    applied: plan.pending.map((file) => file.name),
    alreadyApplied: plan.alreadyApplied.map((file) => file.name),
  };
}

/** What the ledger says, one entry per (name, checksum). */
export async function appliedMigrations(client: ClickHouseClient, database: string): Promise<AppliedMigration[]> {
  const result = await client.query({
    query:
      `SELECT name, checksum, toString(min(applied_at)) AS appliedAt FROM ${database}.schema_migrations ` +
      'GROUP BY name, checksum ORDER BY name, appliedAt',
    format: 'JSONEachRow',
  });
  return result.json<AppliedMigration>();
}

interface ApplyContext {
  client: ClickHouseClient;
  database: string;
  cluster: ClusterLayout | undefined;
  kinds: ReadonlyMap<string, ObjectKind>;
  options: MigrateOptions;
}

async function applyFile(ctx: ApplyContext, file: SchemaFile, steps: readonly RenderedStep[]): Promise<void> {
  const runOne = async (statement: string) => {
    try {
      await run(ctx.client, statement);
    } catch (err) {
      // The server rejected the statement: say which file and statement. Other failures
      // (connection refused, timeout) pass unchanged, as they may be retried.
      if (!(err instanceof ClickHouseError)) throw err;
      const message = err.message;
      throw new MigrationError(`${file.name}: ${message.trim()} (in: ${statement.split('\n', 1)[0]} …)`, { cause: err });
    }
    await ctx.options.afterStatement?.(file.name, statement);
  };
  // The file's number names a rebuild's helper tables (sessions__015), so each file's are its own.
  const tag = String(file.number).padStart(3, '0');
  for (const step of steps) {
    if (file.name !== BOOTSTRAP_FILE) {
      try {
        await rebuildIfKeyChanged({ ...ctx, run: runOne }, step.source, tag);
      } catch (err) {
        if (err instanceof RebuildError) throw new MigrationError(`${file.name}: ${err.message}`, { cause: err });
        throw err;
      }
    }
    for (const statement of step.statements) await runOne(statement);
  }
}

async function run(client: ClickHouseClient, statement: string): Promise<void> {
  try {
    await client.command({ query: statement });
  } catch (err) {
    const lostRace = err instanceof ClickHouseError && ALREADY_EXISTS.has(err.type ?? '');
    if (lostRace && /\bIF\s+NOT\s+EXISTS\b/i.test(statement)) return;
    throw err;
  }
}

async function record(client: ClickHouseClient, database: string, file: SchemaFile): Promise<void> {
  await client.insert({
    table: `${database}.schema_migrations`,
    values: [{ name: file.name, checksum: file.checksum }],
    format: 'JSONEachRow',
    clickhouse_settings: { insert_deduplication_token: `${file.name}:${file.checksum}`, async_insert: 0 },
  });
}
