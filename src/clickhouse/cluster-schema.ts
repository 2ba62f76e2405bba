/**
 * How `migrate` lays the schema out on a ClickHouse cluster (CLICKHOUSE_CLUSTER set).
 *
 * schemas/clickhouse is written once, for one server. On a cluster every statement is rewritten
 * here, from the statements the files make (with `{database}` and `{on_cluster}` already filled):
 *
 * - a table `T` becomes `T_local` on every node, with the `Replicated` variant of its engine
 *   (Keeper path and replica name configurable, `{shard}`/`{replica}` being server macros), and
 *   `T` becomes a `Distributed` table over the `T_local`s, sharded by `cityHash64(user_key)`.
 *   Every query and insert of the project keeps naming `T`; a user's sessions (a cancel row and
 *   the rows it cancels) and events all land on one shard, so `FINAL` and the roll-ups are
 *   exact per shard and the Distributed read just adds the shards up. A table without a
 *   `user_key` (a roll-up by day) is only written by a view on each shard, so its Distributed
 *   table has no sharding key (an insert into it fails instead of landing on a random shard).
 * - a materialized view stays one per node, reading `S_local` and writing `T_local`: each shard
 *   rolls up its own sessions; dashboards read the roll-up through Distributed `T`.
 * - the migration ledger `schema_migrations` is not sharded: one replicated copy on every node
 *   (its Keeper path has `{shard}` replaced by `all`, its replica name is `{shard}-<replica>`), so
 *   `migrate` may connect to any node and see what was applied.
 * - a table without `user_key` but with an `anonymous_id` (identity_links) is sharded by
 *   `cityHash64(anonymous_id)`. That is where its rows already are: `user_key` is the event's
 *   anonymous_id whenever that is non-empty, so every event (and session) of a device sits on
 *   shard cityHash64(anonymous_id), and a view from `events_local` writing rows keyed by a
 *   non-empty anonymous_id (identity_links_mv filters `anonymous_id != ''`) writes them on the
 *   shard the Distributed table would pick. Each shard stays self-contained: all rows of one
 *   anonymous_id merge on one shard, so `FINAL` per shard is exact, and an insert through the
 *   Distributed table (the backfill below) lands next to what the view wrote.
 * - a plain view (`CREATE VIEW`) is created on every node over the Distributed names, so it reads
 *   every shard wherever it is queried. Its joins become `GLOBAL` joins (and `IN (SELECT …)`
 *   becomes `GLOBAL IN`): the right side is computed once, through Distributed, on the node that
 *   got the query and sent to each shard. A plain join there would either be refused
 *   (`distributed_product_mode = 'deny'`, the default) or read each shard's own rows only,
 *   which is wrong as soon as the right side is keyed by something else than the left's shard
 *   (a person joins several user keys). `FINAL` is applied per shard by a Distributed read, so a
 *   view may only use it on a table sharded by a column of its sorting key (sessions, events,
 *   identity_links), never on a roll-up without a sharding key. Window functions and GROUP BY
 *   over a Distributed read are finished on the querying node, over all shards, so
 *   person_sessions numbers a person's sessions across shards and persons counts them whole.
 * - an `INSERT … SELECT` (a one-off backfill) is kept as written, over the Distributed names:
 *   `migrate` runs each statement once, on the node it is connected to, so it reads every shard
 *   once and the Distributed target spreads the rows by its sharding key (synchronously:
 *   `insert_distributed_sync`). Its target must have a sharding key. Backfills must stay
 *   idempotent (identity_links keeps max()), as two runners may both run them, and a failed
 *   run is run again whole. It runs after the statements before it returned from every node
 *   (`ON CLUSTER` waits for all hosts, or fails the run), so identity_links_mv exists on every
 *   shard first and no event falls between the view and the backfill.
 * - `non_replicated_deduplication_window` becomes `replicated_deduplication_window`, same size:
 *   a retried insert with the same `insert_deduplication_token` is dropped by whichever replica
 *   of the shard it reaches (block ids live in Keeper).
 *
 * This is pure text rewriting of statements we write ourselves; the unit tests pass every
 * rewritten statement through the real ClickHouse parser. A statement of a kind it does not
 * know is refused with a `MigrationError`, so a new schema file cannot silently break clusters.
 */

/** Suffix of the per-node tables under a Distributed table. */
export const LOCAL_SUFFIX = '_local';
/** How rows are spread over shards; the same expression recalculation's `--shard` filters on. */
export const SHARDING_KEY = 'cityHash64(user_key)';
/** Tables keyed by a device and not by a user key (identity_links): see the header. */
export const ANONYMOUS_SHARDING_KEY = 'cityHash64(anonymous_id)';
/** The table every node keeps whole. */
export const LEDGER_TABLE = 'schema_migrations';

export interface ClusterLayout {
  /** Cluster name of the servers' `remote_servers`. */
  cluster: string;
  /** Keeper path per table: `{shard}` is a server macro; `{database}` and `{table}` are filled here. */
  replicatedPath: string;
  /** Replica name: a server macro, `{replica}` by default. */
  replicaName: string;
}

export const DEFAULT_REPLICATED_PATH = '/clickhouse/tables/{shard}/{database}/{table}';
export const DEFAULT_REPLICA_NAME = '{replica}';

/** What a schema object is on a cluster: decided from every statement of the schema at once. */
export type ObjectKind = 'ledger' | 'sharded' | 'rollup' | 'view';

export class ClusterRenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterRenderError';
  }
}

const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) (ON CLUSTER '(?:[^'\\]|\\.)*')\s*\(/;
const CREATE_VIEW = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) (ON CLUSTER '(?:[^'\\]|\\.)*')\s/;
const CREATE_PLAIN_VIEW = /^CREATE VIEW IF NOT EXISTS (\w+)\.(\w+) (ON CLUSTER '(?:[^'\\]|\\.)*')\s/;
const INSERT_SELECT = /^INSERT INTO (\w+)\.(\w+)\s+(?:\([^()]*\)\s*)?SELECT\b/;
/** A join, with its kind words; group 1 is set when it is already GLOBAL. */
const JOIN = /(\bGLOBAL\s+)?\b((?:(?:LEFT|RIGHT|INNER|FULL|CROSS|OUTER|SEMI|ANTI|ANY|ALL|ASOF)\s+)*)JOIN\b/gi;
/** `[NOT] IN (SELECT`, a subquery set; group 1 is set when it is already GLOBAL. */
const IN_SUBQUERY = /(\bGLOBAL\s+)?\b((?:NOT\s+)?)IN(\s*\(\s*SELECT\b)/gi;
const ALTER_TABLE = /^ALTER TABLE (\w+)\.(\w+) (ON CLUSTER '(?:[^'\\]|\\.)*')\s+([\s\S]*)$/;
const DROP = /^DROP (TABLE|VIEW) IF EXISTS (\w+)\.(\w+) (ON CLUSTER '(?:[^'\\]|\\.)*')(.*)$/s;
/** `ENGINE = Name` or `ENGINE = Name(args)`; our files never nest parentheses in engine arguments. */
const ENGINE = /\bENGINE\s*=\s*(\w*MergeTree)(?:\s*\(([^()]*)\))?/;
/** Changes of columns, which the Distributed table must follow. */
const COLUMN_CHANGE = /^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b/i;

/** The kind of every table and view the statements create (statements rendered with ON CLUSTER). */
export function objectKinds(statements: readonly string[]): Map<string, ObjectKind> {
  const kinds = new Map<string, ObjectKind>();
  for (const statement of statements) {
    const table = CREATE_TABLE.exec(statement);
    if (table) {
      const name = table[2] as string;
      kinds.set(name, name === LEDGER_TABLE ? 'ledger' : shardingKeyOf(statement) ? 'sharded' : 'rollup');
      continue;
    }
    const view = CREATE_VIEW.exec(statement) ?? CREATE_PLAIN_VIEW.exec(statement);
    if (view) kinds.set(view[2] as string, 'view');
  }
  return kinds;
}

/**
 * The statements to run on a cluster for one statement of a schema file (already rendered with
 * its database and `ON CLUSTER`). `kinds` comes from `objectKinds` over every file, so a later
 * file's ALTER knows what an earlier file created.
 */
export function renderForCluster(statement: string, layout: ClusterLayout, kinds: ReadonlyMap<string, ObjectKind>): string[] {
  const table = CREATE_TABLE.exec(statement);
  if (table) return createTable(statement, table[1] as string, table[2] as string, table[3] as string, layout);
  const view = CREATE_VIEW.exec(statement);
  if (view) return [createView(statement, view[1] as string, view[2] as string, kinds)];
  const plainView = CREATE_PLAIN_VIEW.exec(statement);
  if (plainView) return [readThroughDistributed(statement, plainView[1] as string, plainView[2] as string, kinds)];
  const insert = INSERT_SELECT.exec(statement);
  if (insert) return [insertSelect(statement, insert[1] as string, insert[2] as string, kinds)];
  const alter = ALTER_TABLE.exec(statement);
  if (alter) return alterTable(alter[1] as string, alter[2] as string, alter[3] as string, alter[4] as string, kinds);
  const drop = DROP.exec(statement);
  if (drop) return dropObject(drop[1] as string, drop[2] as string, drop[3] as string, drop[4] as string, drop[5] as string, kinds);
  throw new ClusterRenderError(`cannot lay this statement out on a cluster (extend src/clickhouse/cluster-schema.ts): ${statement.slice(0, 80)} …`);
}

function createTable(statement: string, database: string, name: string, onCluster: string, layout: ClusterLayout): string[] {
  const engine = ENGINE.exec(statement);
  if (!engine) throw new ClusterRenderError(`${database}.${name}: only MergeTree-family tables can be replicated`);
  const ledger = name === LEDGER_TABLE;
  const local = ledger ? name : `${name}${LOCAL_SUFFIX}`;
  const path = fillPath(ledger ? layout.replicatedPath.replace(/\{shard\}/g, 'all') : layout.replicatedPath, database, local);
  const replica = ledger ? `{shard}-${layout.replicaName}` : layout.replicaName;
  const args = [quote(path), quote(replica), ...(engine[2]?.trim() ? [engine[2].trim()] : [])].join(', ');
  const replicated = statement
    .replace(`${database}.${name} ${onCluster}`, `${database}.${local} ${onCluster}`)
    .replace(engine[0], `ENGINE = Replicated${engine[1]}(${args})`)
    .replace(/\bnon_replicated_deduplication_window\b/g, 'replicated_deduplication_window');
  if (ledger) return [replicated];
  const key = shardingKeyOf(statement);
  const shardingKey = key ? `, ${key}` : '';
  const distributed =
    `CREATE TABLE IF NOT EXISTS ${database}.${name} ${onCluster} AS ${database}.${local}\n` +
    `ENGINE = Distributed(${clusterLiteral(onCluster)}, ${quote(database)}, ${quote(local)}${shardingKey})`;
  return [replicated, distributed];
}

/** The view reads and writes the node's local tables: `FROM`, `JOIN` and `TO` names get `_local`. */
function createView(statement: string, database: string, name: string, kinds: ReadonlyMap<string, ObjectKind>): string {
  const escaped = escapeRegExp(database);
  return statement.replace(new RegExp(`\\b(TO|FROM|JOIN)(\\s+)${escaped}\\.(\\w+)\\b`, 'g'), (whole, word: string, space: string, table: string) => {
    if (table === name) return whole;
    const kind = kinds.get(table);
    if (kind === 'sharded' || kind === 'rollup') return `${word}${space}${database}.${table}${LOCAL_SUFFIX}`;
    throw new ClusterRenderError(`${database}.${name}: reads or writes ${table}, which is not a sharded table of the schema`);
  });
}

function alterTable(database: string, name: string, onCluster: string, rest: string, kinds: ReadonlyMap<string, ObjectKind>): string[] {
  const kind = kinds.get(name);
  if (kind === undefined) throw new ClusterRenderError(`ALTER TABLE ${database}.${name}: not a table of the schema`);
  if (kind === 'ledger' || kind === 'view') return [`ALTER TABLE ${database}.${name} ${onCluster} ${rest}`];
  const statements = [`ALTER TABLE ${database}.${name}${LOCAL_SUFFIX} ${onCluster} ${rest}`];
  // The Distributed table has the columns but no data, indexes or settings of its own.
  if (COLUMN_CHANGE.test(rest.trim())) statements.push(`ALTER TABLE ${database}.${name} ${onCluster} ${rest}`);
  return statements;
}

function dropObject(what: string, database: string, name: string, onCluster: string, rest: string, kinds: ReadonlyMap<string, ObjectKind>): string[] {
  const kind = kinds.get(name);
  const drop = (table: string) => `DROP ${what} IF EXISTS ${database}.${table} ${onCluster}${rest}`;
  if (kind === 'sharded' || kind === 'rollup') return [drop(name), drop(`${name}${LOCAL_SUFFIX}`)];
  return [drop(name)];
}

/**
 * A view over the Distributed names, run by whichever node is queried: references checked, joins
 * and subquery sets made GLOBAL, FINAL only where it is exact per shard (see the header).
 */
function readThroughDistributed(statement: string, database: string, name: string, kinds: ReadonlyMap<string, ObjectKind>): string {
  const escaped = escapeRegExp(database);
  for (const match of statement.matchAll(new RegExp(`\\b${escaped}\\.(\\w+)\\b(?:\\s+AS\\s+\\w+)?(\\s+FINAL\\b)?`, 'gi'))) {
    const table = match[1] as string;
    if (table === name) continue;
    const kind = kinds.get(table);
    if (kind !== 'sharded' && kind !== 'rollup' && kind !== 'view') {
      throw new ClusterRenderError(`${database}.${name}: reads ${table}, which is not a Distributed table or view of the schema`);
    }
    if (match[2] && kind !== 'sharded') {
      throw new ClusterRenderError(`${database}.${name}: FINAL on ${table} would merge each shard apart; only tables sharded by their key may be read with FINAL`);
    }
  }
  return statement
    .replace(JOIN, (whole, global: string | undefined, words: string) => (global ? whole : `GLOBAL ${words}JOIN`))
    .replace(IN_SUBQUERY, (whole, global: string | undefined, not: string, rest: string) => (global ? whole : `GLOBAL ${not}IN${rest}`));
}

/** A backfill: run once by `migrate`, reading and writing the Distributed names. */
function insertSelect(statement: string, database: string, name: string, kinds: ReadonlyMap<string, ObjectKind>): string {
  if (kinds.get(name) !== 'sharded') {
    throw new ClusterRenderError(`INSERT INTO ${database}.${name}: only tables with a sharding key can be filled through Distributed`);
  }
  const select = statement.slice(statement.search(/\bSELECT\b/));
  // As the cluster client sends with every insert; said here too, so that `migrate` returns only
  // once every shard holds its rows whatever client runs it.
  return `${statement.slice(0, statement.length - select.length)}SETTINGS insert_distributed_sync = 1\n${readThroughDistributed(select, database, name, kinds)}`;
}

/** The sharding expression of a table, from its columns (see the header); "" for none. */
function shardingKeyOf(createTable: string): string {
  if (/^\s*user_key\s+String\b/m.test(createTable)) return SHARDING_KEY;
  if (/^\s*anonymous_id\s+String\b/m.test(createTable)) return ANONYMOUS_SHARDING_KEY;
  return '';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function fillPath(path: string, database: string, table: string): string {
  return path.replace(/\{database\}/g, database).replace(/\{table\}/g, table);
}

/** The cluster name of an `ON CLUSTER '…'` clause, as the same string literal. */
function clusterLiteral(onCluster: string): string {
  return onCluster.slice('ON CLUSTER '.length);
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
