/**
 * Rebuilding a table under a new sorting key, as `migrate` does when a schema file declares an
 * existing table (`CREATE TABLE IF NOT EXISTS`) with another `ORDER BY` than the one it has.
 *
 * ClickHouse cannot change a sorting key's leading columns in place, so the table is rebuilt:
 *
 *   1. create the declared table as `T__<file>` (e.g. `sessions__015`),
 *   2. empty it (TRUNCATE) and copy every stored row of `T` into it: the columns both have; a
 *      column only the new table has takes its DEFAULT,
 *   3. swap: `RENAME TABLE T TO T__pre<file>, T__<file> TO T`,
 *   4. drop `T__pre<file>`.
 *
 * Every step can run again. Which step a run resumes at is read from the tables that exist, so
 * a run killed anywhere and started again ends where a clean run does:
 * - killed before the swap: `T` still has its old key; the copy is emptied and made again, so a
 *   partial copy is never kept and no row is copied twice;
 * - killed between the two renames: `T` is missing, both others exist; the second is done;
 * - killed after the swap: `T` has the declared key; what is left over is dropped.
 * Copying is the only slow step (a full read and write of the table); the swap is a rename.
 *
 * Rows written to `T` by others between the copy and the swap are not moved: stop the writers
 * while a file that rebuilds a table is applied (docs/operations.md says so).
 *
 * On a cluster the sorting key is the `T_local` tables': step 1 creates `T__<file>_local` (with its
 * own Keeper path) and a Distributed `T__<file>` over them; step 2 copies once, from the Distributed
 * `T` to the Distributed `T__<file>`, which puts every row on the shard it was on (same sharding
 * key; a roll-up's rows, which only ever are summed, on any shard); steps 3 and 4 rename and drop
 * the local tables on every node (ON CLUSTER); the Distributed `T` keeps its name and is made
 * again over the new `T_local` when their columns differ.
 */
import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { LOCAL_SUFFIX, renderForCluster, type ClusterLayout, type ObjectKind } from './cluster-schema';

/** What a rebuild needs from the runner. */
export interface RebuildContext {
  client: ClickHouseClient;
  database: string;
  /** The cluster's layout; absent on a single server. */
  cluster?: ClusterLayout;
  kinds: ReadonlyMap<string, ObjectKind>;
  /** Runs one statement (the runner's error handling and step hook included). */
  run(statement: string): Promise<void>;
}

const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s/;

/** The table a `CREATE TABLE IF NOT EXISTS db.name` statement creates, or null for other statements. */
export function createdTable(statement: string): string | null {
  return CREATE_TABLE.exec(statement)?.[2] ?? null;
}

/**
 * The sorting key a CREATE TABLE statement declares, in the form `system.tables.sorting_key` has
 * once whitespace is removed (no outer parentheses); null without an ORDER BY.
 */
export function declaredSortingKey(statement: string): string | null {
  const match = /\bORDER BY\s+([\s\S]*?)\s*(?:\bPRIMARY KEY\b|\bSAMPLE BY\b|\bTTL\b|\bSETTINGS\b|\bCOMMENT\b|$)/.exec(statement);
  if (!match) return null;
  const key = normalizeKey(match[1] as string);
  // VersionedCollapsingMergeTree(sign, version) sorts by the version last, after the declared key.
  const version = /\bVersionedCollapsingMergeTree\s*\(\s*\w+\s*,\s*(\w+)\s*\)/.exec(statement)?.[1];
  return version && !key.split(',').includes(version) ? `${key},${version}` : key;
}

/** A sorting key without whitespace and without parentheses around the whole list. */
export function normalizeKey(key: string): string {
  let text = key.replace(/\s+/g, '');
  while (text.startsWith('(') && closingParen(text, 0) === text.length - 1) text = text.slice(1, -1);
  return text;
}

function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '(') depth += 1;
    else if (text[i] === ')') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Names of the helper tables of a rebuild made by schema file number `tag` (e.g. "015"). */
export function rebuildNames(table: string, tag: string): { copy: string; previous: string } {
  return { copy: `${table}__${tag}`, previous: `${table}__pre${tag}` };
}

/**
 * Rebuilds the table a `CREATE TABLE IF NOT EXISTS` statement declares when it exists with
 * another sorting key, or finishes a rebuild an earlier run left midway. `statement` is the
 * file's statement with `{database}` and `{on_cluster}` filled in. Returns whether it did
 * anything; either way the runner then runs the statement itself (a no-op once the table exists).
 */
export async function rebuildIfKeyChanged(ctx: RebuildContext, statement: string, tag: string): Promise<boolean> {
  const table = createdTable(statement);
  const declared = declaredSortingKey(statement);
  if (!table || declared === null) return false;
  const { database, cluster } = ctx;
  const local = (name: string) => (cluster ? `${name}${LOCAL_SUFFIX}` : name);
  const onCluster = cluster ? ` ON CLUSTER ${quote(cluster.cluster)}` : '';
  const { copy, previous } = rebuildNames(table, tag);
  const existing = await sortingKeys(ctx.client, database, [local(table), local(copy), local(previous), copy]);
  const current = existing.get(local(table));

  const copyAndSwap = async () => {
    const copyStatement = statement.replace(`${database}.${table} `, `${database}.${copy} `);
    const creates = cluster ? renderForCluster(copyStatement, cluster, ctx.kinds) : [copyStatement];
    for (const create of creates) await ctx.run(create);
    await ctx.run(`TRUNCATE TABLE IF EXISTS ${database}.${local(copy)}${onCluster}`);
    const columns = await commonStoredColumns(ctx.client, database, local(copy), local(table));
    const list = columns.join(', ');
    // Row for row: without optimize_on_insert = 0 the insert would collapse, replace or sum the
    // rows of each block as a merge does (same sums, fewer rows). On a cluster the copy reads and
    // writes through the Distributed tables, once, from this node.
    const settings = [
      'optimize_on_insert = 0',
      ...(cluster ? ['insert_distributed_sync = 1'] : []),
      ...(cluster && ctx.kinds.get(table) === 'rollup' ? ['insert_distributed_one_random_shard = 1'] : []),
    ];
    const before = await rowCount(ctx.client, database, table);
    await ctx.run(`INSERT INTO ${database}.${copy} (${list}) SETTINGS ${settings.join(', ')} SELECT ${list} FROM ${database}.${table}`);
    // Swap only a complete copy of a table nobody wrote to meanwhile: a writer still running, or
    // a second runner emptying the copy, would otherwise lose rows.
    const [after, copied] = [await rowCount(ctx.client, database, table), await rowCount(ctx.client, database, copy)];
    if (after !== before || copied !== before) {
      throw new RebuildError(
        `${database}.${table} changed while it was copied (${before} rows before, ${after} after, ${copied} copied): ` +
          'stop the workers and any other migrate, then run migrate again (it starts the copy over)',
      );
    }
    await ctx.run(
      `RENAME TABLE ${database}.${local(table)} TO ${database}.${local(previous)}, ${database}.${local(copy)} TO ${database}.${local(table)}${onCluster}`,
    );
  };

  let acted = false;
  if (current === undefined) {
    // Killed between the two renames of the swap: finish it. (Otherwise the table is new.)
    if (!existing.has(local(copy)) || !existing.has(local(previous))) return false;
    await ctx.run(`RENAME TABLE ${database}.${local(copy)} TO ${database}.${local(table)}${onCluster}`);
    acted = true;
  } else if (normalizeKey(current) !== declared) {
    if (existing.has(local(previous))) {
      throw new RebuildError(
        `${database}.${local(table)} has its old sorting key but ${database}.${local(previous)} exists too; ` +
          'a person must decide which one holds the data (rename or drop the other) before migrating again',
      );
    }
    try {
      await copyAndSwap();
    } catch (err) {
      // Another runner may have swapped the table while this one copied (a statement of this
      // one then fails on the server): that is the end state. Anything else stops the run.
      if (!fromServer(err)) throw err;
      const now = (await sortingKeys(ctx.client, database, [local(table)])).get(local(table));
      if (now === undefined || normalizeKey(now) !== declared) throw err;
    }
    acted = true;
  }

  // After the swap (now or in an earlier run): drop what is left over.
  if (existing.has(local(previous)) || acted) {
    await ctx.run(`DROP TABLE IF EXISTS ${database}.${local(previous)}${onCluster} SYNC`);
    acted = true;
  }
  if (cluster) {
    if (existing.has(copy) || acted) {
      await ctx.run(`DROP TABLE IF EXISTS ${database}.${copy}${onCluster} SYNC`);
      acted = true;
    }
    // The Distributed table must have the new local table's columns.
    if (!(await sameColumns(ctx.client, database, table, local(table)))) {
      await ctx.run(`DROP TABLE IF EXISTS ${database}.${table}${onCluster} SYNC`);
      const distributed = renderForCluster(statement, cluster, ctx.kinds).find((s) => /ENGINE\s*=\s*Distributed\(/.test(s));
      if (distributed) await ctx.run(distributed);
      acted = true;
    }
  }
  return acted;
}

/** A rebuild found a state it must not guess about. */
export class RebuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RebuildError';
  }
}

/** An error the server answered (or the copy check), as a race with another runner makes. */
function fromServer(err: unknown): boolean {
  return err instanceof RebuildError || err instanceof ClickHouseError || (err instanceof Error && err.cause instanceof ClickHouseError);
}

async function rowCount(client: ClickHouseClient, database: string, table: string): Promise<number> {
  const result = await client.query({ query: `SELECT count() AS n FROM ${database}.${table}`, format: 'JSONEachRow' });
  const [row] = await result.json<{ n: string }>();
  return Number(row?.n ?? 0);
}

async function sortingKeys(client: ClickHouseClient, database: string, names: readonly string[]): Promise<Map<string, string>> {
  const result = await client.query({
    query: 'SELECT name, sorting_key FROM system.tables WHERE database = {database:String} AND name IN {names:Array(String)}',
    query_params: { database, names: [...names] },
    format: 'JSONEachRow',
  });
  return new Map((await result.json<{ name: string; sorting_key: string }>()).map((row) => [row.name, row.sorting_key]));
}

/** Stored (not ALIAS/MATERIALIZED/EPHEMERAL) columns of `target` that `source` has too, in `target`'s order. */
async function commonStoredColumns(client: ClickHouseClient, database: string, target: string, source: string): Promise<string[]> {
  const result = await client.query({
    query: `SELECT name FROM system.columns
            WHERE database = {database:String} AND table = {target:String} AND default_kind NOT IN ('ALIAS', 'MATERIALIZED', 'EPHEMERAL')
              AND name IN (SELECT name FROM system.columns WHERE database = {database:String} AND table = {source:String}
                           AND default_kind NOT IN ('ALIAS', 'MATERIALIZED', 'EPHEMERAL'))
            ORDER BY position`,
    query_params: { database, target, source },
    format: 'JSONEachRow',
  });
  return (await result.json<{ name: string }>()).map((row) => `\`${row.name}\``);
}

async function sameColumns(client: ClickHouseClient, database: string, a: string, b: string): Promise<boolean> {
  const result = await client.query({
    query: `SELECT table, groupArray((name, type)) AS columns
            FROM (SELECT table, name, type FROM system.columns WHERE database = {database:String} AND table IN ({a:String}, {b:String}) ORDER BY table, position)
            GROUP BY table`,
    query_params: { database, a, b },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ table: string; columns: unknown }>();
  const of = (name: string) => JSON.stringify(rows.find((row) => row.table === name)?.columns ?? null);
  return of(a) === of(b);
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
