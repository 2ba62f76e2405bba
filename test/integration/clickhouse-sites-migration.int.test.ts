/**
 * 015_sites.sql on a database with data: every table of events, sessions, roll-ups and people
 * is rebuilt with `site` first in its sorting key, existing rows become site 'default', and no
 * row is lost or doubled (rows, sum(sign) and a hash of every row, per table, before = after).
 * A run stopped midway — after any chosen step, a partial copy included — and run again ends
 * exactly where a clean run does.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { DEFAULT_SCHEMA_DIR, appliedMigrations, migrate } from '../../src/clickhouse/migrations';
import type { SignedSessionRow } from '../../src/clickhouse/session-sink';
import { generateTraffic } from '../../src/loadgen/traffic';
import { dropTestDatabase, uniqueName } from '../support';
import { chunks, insertEventRows, insertRows, queryRows, simulateWorker, testClient } from './clickhouse-fixtures';

jest.setTimeout(300_000);

const REBUILT = ['sessions', 'events', 'sessions_daily', 'users_daily', 'identity_links'];
const OBJECTS = [
  'events',
  'identity_links',
  'identity_links_mv',
  'identity_map',
  'person_sessions',
  'persons',
  'schema_migrations',
  'session_persons',
  'sessions',
  'sessions_daily',
  'sessions_daily_mv',
  'users_daily',
  'users_daily_mv',
];

/** Per table: rows, sum(sign) where there is one, and an order-free hash of every stored row. */
type Fingerprint = Record<string, { rows: number; sign: number | null; hash: string }>;

let client: ClickHouseClient;
const databases: string[] = [];
let before014: string;
let traffic: { sessions: SignedSessionRow[][]; events: ReturnType<typeof simulateWorker>['events'] };

beforeAll(async () => {
  client = await testClient('default');
  before014 = mkdtempSync(path.join(os.tmpdir(), 'sessionizer-schema-'));
  cpSync(DEFAULT_SCHEMA_DIR, before014, { recursive: true });
  rmSync(path.join(before014, '015_sites.sql'));
  const now = Date.now();
  const events = [...generateTraffic({ users: 40, visitsPerUser: 3, eventsPerVisit: 4, startMs: now - 3 * 86_400_000, spanMs: 2 * 86_400_000, disorderMs: 5 * 60_000, seed: 11 })];
  // Logins, so identity_links has rows: some visitors log in on their second event.
  for (const [i, event] of events.entries()) if (i % 7 === 1 && event.anonymous_id) (event as Record<string, unknown>).user_id = `u-${i % 5}`;
  const stream = simulateWorker(chunks(events, 50), Infinity);
  traffic = { sessions: stream.batches, events: stream.events };
});

afterAll(async () => {
  for (const database of databases) await dropTestDatabase(client, database);
  await client.close();
  rmSync(before014, { recursive: true, force: true });
});

/** A database as 014 left it, with sessions (cancel rows included), events, roll-ups and links. */
async function databaseBeforeSites(): Promise<string> {
  const database = uniqueName('sites_mig');
  databases.push(database);
  await migrate(client, { database, schemaDir: before014 });
  // One insert each (the shared server is slow under load); the cancel rows of the batches
  // collapse in it, so a few are added in an insert of their own, as the worker's retractions are.
  await insertRows(client, `${database}.sessions`, traffic.sessions.flat(), 's');
  await insertEventsBeforeSites(database);
  await client.command({ query: `INSERT INTO ${database}.sessions SELECT * REPLACE (-1 AS sign) FROM ${database}.sessions ORDER BY session_id LIMIT 5` });
  return database;
}

/**
 * The worker's event rows, into a table as 014 left it: today's worker writes a `site` column
 * that table does not have, so the rows are written once into a current database and copied
 * over in the old table's own columns.
 */
async function insertEventsBeforeSites(database: string): Promise<void> {
  const current = uniqueName('sites_mig_src');
  databases.push(current);
  await migrate(client, { database: current });
  await insertEventRows(client, current, traffic.events, 'e');
  const list = (await columnsOf(database, 'events')).map((c) => `\`${c}\``).join(', ');
  await client.command({ query: `INSERT INTO ${database}.events (${list}) SELECT ${list} FROM ${current}.events` });
}

/** The stored columns every version of a table has (site excluded, so before and after compare). */
async function columnsOf(database: string, table: string): Promise<string[]> {
  const rows = await queryRows<{ name: string }>(
    client,
    `SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}
       AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') AND name != 'site' ORDER BY name`,
    { db: database, table },
  );
  return rows.map((row) => row.name);
}

async function fingerprint(database: string, columns: Record<string, string[]>): Promise<Fingerprint> {
  const out: Fingerprint = {};
  for (const table of REBUILT) {
    const list = (columns[table] as string[]).map((c) => `\`${c}\``).join(', ');
    const hasSign = (columns[table] as string[]).includes('sign');
    const [row] = await queryRows<{ total_rows: string; total_sign: string | null; row_hash: string }>(
      client,
      `SELECT count() AS total_rows, ${hasSign ? 'sum(sign)' : 'NULL'} AS total_sign, toString(sum(cityHash64(${list}))) AS row_hash FROM ${database}.${table}`,
    );
    const sign = row?.total_sign;
    out[table] = { rows: Number(row?.total_rows), sign: sign === null || sign === undefined ? null : Number(sign), hash: String(row?.row_hash) };
  }
  return out;
}

async function objects(database: string): Promise<string[]> {
  const rows = await queryRows<{ name: string }>(client, 'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name', { db: database });
  return rows.map((row) => row.name);
}

async function sortingKeys(database: string): Promise<Record<string, string>> {
  const rows = await queryRows<{ name: string; sorting_key: string; primary_key: string }>(
    client,
    'SELECT name, sorting_key, primary_key FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}',
    { db: database, names: REBUILT },
  );
  // The primary key (the index) is the sorting key, or its prefix without the version.
  for (const row of rows) expect([row.name, row.sorting_key.startsWith(row.primary_key), row.primary_key.split(', ')[0]]).toEqual([row.name, true, 'site']);
  return Object.fromEntries(rows.map((row) => [row.name, row.sorting_key]));
}

/** What a database must look like after 015, whichever way it got there. */
async function expectMigrated(database: string, expected: Fingerprint, columns: Record<string, string[]>): Promise<void> {
  expect(await objects(database)).toEqual(OBJECTS);
  expect(await sortingKeys(database)).toEqual({
    sessions: 'site, toDate(started_at), user_key, session_id, version',
    events: 'site, user_key, timestamp, event_id',
    sessions_daily: 'site, day, channel, source, medium, campaign, device_type, country',
    users_daily: 'site, day, channel, source, medium, campaign, device_type, country, user_key',
    identity_links: 'site, anonymous_id',
  });
  expect(await fingerprint(database, columns)).toEqual(expected);
  for (const table of [...REBUILT, 'identity_map', 'session_persons', 'persons']) {
    const [row] = await queryRows<{ sites: string[] }>(client, `SELECT groupUniqArray(site) AS sites FROM ${database}.${table}`);
    expect({ table, sites: row?.sites }).toEqual({ table, sites: ['default'] });
  }
  expect((await appliedMigrations(client, database)).filter((m) => m.name === '015_sites.sql')).toHaveLength(1);
}

async function prepared(): Promise<{ database: string; expected: Fingerprint; columns: Record<string, string[]> }> {
  const database = await databaseBeforeSites();
  const columns: Record<string, string[]> = {};
  for (const table of REBUILT) columns[table] = await columnsOf(database, table);
  const expected = await fingerprint(database, columns);
  for (const table of REBUILT) expect({ table, rows: expected[table]?.rows }).toEqual({ table, rows: expect.any(Number) });
  expect(expected.sessions?.rows).toBeGreaterThan(expected.sessions?.sign ?? 0); // cancel rows are there
  expect(expected.identity_links?.rows).toBeGreaterThan(0);
  return { database, expected, columns };
}

it('rebuilds every table with site first in its sorting key, keeping every row, as site default', async () => {
  const { database, expected, columns } = await prepared();
  const personsBefore = await queryRows(client, `SELECT person_id, sessions, first_source FROM ${database}.persons ORDER BY person_id`);
  await migrate(client, { database });
  await expectMigrated(database, expected, columns);
  // The people views give what they gave, now per site.
  expect(await queryRows(client, `SELECT person_id, sessions, first_source FROM ${database}.persons WHERE site = 'default' ORDER BY person_id`)).toEqual(personsBefore);
  // A new row of another site goes through the new views into the roll-ups under its site.
  await client.command({
    query: `INSERT INTO ${database}.sessions (site, session_id, user_key, started_at, ended_at, sign, version) VALUES ('shop', 'x1', 'k1', now64(3), now64(3), 1, 1)`,
  });
  const [daily] = await queryRows<{ n: string }>(client, `SELECT sum(sessions) AS n FROM ${database}.sessions_daily WHERE site = 'shop'`);
  expect(Number(daily?.n)).toBe(1);
});

/** Stops a run after the first statement of 015 that matches, optionally doing something first. */
function stopAfter(pattern: RegExp, before?: (database: string) => Promise<void>, database = '') {
  let stopped = false;
  return async (file: string, statement: string) => {
    if (stopped || file !== '015_sites.sql' || !pattern.test(statement)) return;
    stopped = true;
    if (before) await before(database);
    throw new Error(`stopped after: ${statement.slice(0, 60)}`);
  };
}

describe('stopped midway and run again, it ends as a clean run does', () => {
  const cases: [string, RegExp, ((database: string) => Promise<void>)?][] = [
    [
      'in the middle of copying sessions (a partial copy in the new table)',
      /^TRUNCATE TABLE IF EXISTS \w+\.sessions__015\b/,
      async (database) => {
        await client.command({ query: `INSERT INTO ${database}.sessions__015 (session_id, user_key, started_at, ended_at, sign, version) SELECT session_id, user_key, started_at, ended_at, sign, version FROM ${database}.sessions LIMIT 10` });
      },
    ],
    ['after copying events, before the swap', /^INSERT INTO \w+\.events__015\b/, undefined],
    [
      'between the two renames of the swap',
      /^INSERT INTO \w+\.identity_links__015\b/,
      async (database) => {
        await client.command({ query: `RENAME TABLE ${database}.identity_links TO ${database}.identity_links__pre015` });
      },
    ],
    ['after the swap of sessions_daily, before the old table is dropped', /^RENAME TABLE \w+\.sessions_daily TO/, undefined],
    ['after the roll-up views were created again', /^CREATE MATERIALIZED VIEW IF NOT EXISTS \w+\.users_daily_mv/, undefined],
  ];

  it.each(cases)('%s', async (_name, pattern, before) => {
    const { database, expected, columns } = await prepared();
    const hook = stopAfter(pattern, before, database);
    await expect(migrate(client, { database }, () => undefined, { afterStatement: hook })).rejects.toThrow(/stopped after/);
    expect((await appliedMigrations(client, database)).map((m) => m.name)).not.toContain('015_sites.sql');
    const again = await migrate(client, { database });
    expect(again.applied).toEqual(['015_sites.sql']);
    await expectMigrated(database, expected, columns);
  });
});

it('refuses to swap a table that was written to while it was copied, and succeeds once the writes stop', async () => {
  const { database } = await prepared();
  // A writer still running: a row lands in sessions while it is copied (right after the copy's INSERT).
  let writes = 1;
  const hook = async (_file: string, statement: string) => {
    if (writes > 0 && /^INSERT INTO \w+\.sessions__015\b/.test(statement)) {
      writes -= 1;
      await client.command({ query: `INSERT INTO ${database}.sessions (session_id, user_key, started_at, ended_at, sign, version) VALUES ('late', 'k', now64(3), now64(3), 1, 1)` });
    }
  };
  await expect(migrate(client, { database }, () => undefined, { afterStatement: hook })).rejects.toThrow(
    /sessions changed while it was copied .*stop the workers/,
  );
  await expect(migrate(client, { database }, () => undefined, { afterStatement: hook })).resolves.toMatchObject({ applied: ['015_sites.sql'] });
  const [late] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${database}.sessions WHERE session_id = 'late'`);
  expect(Number(late?.n)).toBe(1);
});
