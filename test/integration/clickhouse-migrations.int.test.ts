/**
 * `migrate` against a real ClickHouse: creates the database, applies every schema file once,
 * is a no-op when re-run, survives two runners at once, applies a new file on upgrade, and
 * refuses (applying nothing) when an applied file was edited.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { DEFAULT_SCHEMA_DIR, MigrationError, appliedMigrations, migrate } from '../../src/clickhouse/migrations';
import { runMigrate } from '../../src/commands/migrate-command';
import { parseEvent } from '../../src/events/parse-event';
import { dropTestDatabase, uniqueName } from '../support';
import { configFor, queryRows, testClient } from './clickhouse-fixtures';

// Each run applies some 25 statements, several times per test; on a busy shared server that
// takes longer than Jest's default 5 s.
jest.setTimeout(60_000);

const SCHEMA_FILES = ['000_schema_migrations.sql', '001_sessions.sql', '002_events.sql', '003_rollups.sql', '013_people.sql', '014_events_raw.sql', '015_sites.sql'];
const TABLES = [
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

describe('migrate', () => {
  const databases: string[] = [];
  const tempDirs: string[] = [];
  let client: ClickHouseClient;

  /** A database name nobody uses yet; dropped after the file. */
  function freshDatabase(): string {
    const name = uniqueName('migrate');
    databases.push(name);
    return name;
  }

  /** A copy of schemas/clickhouse we may edit. */
  function schemaCopy(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionizer-schema-'));
    tempDirs.push(dir);
    cpSync(DEFAULT_SCHEMA_DIR, dir, { recursive: true });
    return dir;
  }

  async function tablesOf(database: string): Promise<string[]> {
    const rows = await queryRows<{ name: string }>(
      client,
      'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name',
      { db: database },
    );
    return rows.map((r) => r.name);
  }

  async function ledgerRows(database: string): Promise<number> {
    const [row] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${database}.schema_migrations`);
    return Number(row?.n);
  }

  beforeAll(async () => {
    client = await testClient('default');
  });

  afterAll(async () => {
    for (const database of databases) await dropTestDatabase(client, database);
    await client.close();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database and applies every file once, in order; a re-run applies nothing', async () => {
    const database = freshDatabase();
    const log: string[] = [];
    const first = await migrate(client, { database, cluster: '' }, (line) => log.push(line));
    expect(first).toEqual({ database, applied: SCHEMA_FILES, alreadyApplied: [] });
    expect(log.map((line) => line.replace(/ in \d+ ms$/, ''))).toEqual(SCHEMA_FILES.map((f) => `applied ${f}`));
    expect(await tablesOf(database)).toEqual(TABLES);

    const second = await migrate(client, { database });
    expect(second).toEqual({ database, applied: [], alreadyApplied: SCHEMA_FILES });
    expect(await ledgerRows(database)).toBe(SCHEMA_FILES.length);

    const applied = await appliedMigrations(client, database);
    expect(applied.map((a) => a.name)).toEqual(SCHEMA_FILES);
    for (const a of applied) expect(a.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('lets two runners migrate the same new database at once', async () => {
    const database = freshDatabase();
    const other = await testClient('default');
    try {
      const results = await Promise.all([migrate(client, { database }), migrate(other, { database })]);
      for (const result of results) expect([...result.applied, ...result.alreadyApplied].sort()).toEqual(SCHEMA_FILES);
      // Each file was applied by at least one of them; typically both saw an empty ledger and
      // both applied and recorded every file.
      const appliedTimes = results.reduce((n, r) => n + r.applied.length, 0);
      expect(appliedTimes).toBeGreaterThanOrEqual(SCHEMA_FILES.length);
    } finally {
      await other.close();
    }
    expect(await tablesOf(database)).toEqual(TABLES);
    // One ledger row per file, even without FINAL: the second record was deduplicated.
    expect(await ledgerRows(database)).toBe(SCHEMA_FILES.length);
    const again = await migrate(client, { database });
    expect(again.applied).toEqual([]);
  });

  it('applies a new file on upgrade, and only that one', async () => {
    const database = freshDatabase();
    const dir = schemaCopy();
    await migrate(client, { database, schemaDir: dir });
    writeFileSync(
      path.join(dir, '004_add_note.sql'),
      '-- an upgrade; idempotent like every file\nALTER TABLE {database}.events {on_cluster} ADD COLUMN IF NOT EXISTS note String DEFAULT \'\';\n',
    );
    const result = await migrate(client, { database, schemaDir: dir });
    expect(result.applied).toEqual(['004_add_note.sql']);
    const columns = await queryRows<{ name: string }>(
      client,
      "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'events' AND name = 'note'",
      { db: database },
    );
    expect(columns).toHaveLength(1);
  });

  it('014 keeps every value of rows written without raw: raw is rebuilt from their columns before the columns are read from it', async () => {
    const database = freshDatabase();
    const dir = schemaCopy();
    rmSync(path.join(dir, '014_events_raw.sql'));
    rmSync(path.join(dir, '015_sites.sql'));
    await migrate(client, { database, schemaDir: dir });
    // An import into the old layout: every column filled, no raw (one value to escape).
    await client.command({
      query: `INSERT INTO ${database}.events (event_id, user_key, anonymous_id, user_id, timestamp, type, name, channel, key_event,
                page_url, page_path, page_title, page_referrer, campaign_source, campaign_medium, campaign_name, campaign_term,
                campaign_content, device_type, device_os, device_browser, device_app_version, geo_country, geo_region, geo_city, properties)
              VALUES ('imp-1', 'anon-9', 'anon-9', 'u-9', '2024-05-01 10:00:00.250', 'page_view', 'Home', 'app', 1,
                'https://ex.com/?q="x"', '/', 'Tïtle', 'https://r.example/', 'news', 'email', 'may', 't', 'c',
                'mobile', 'iOS', 'Safari', '1.0', 'DE', 'BE', 'Berlin', '{"plan":"pro"}')`,
    });
    const columns = 'name, page_url, page_path, page_title, page_referrer, campaign_source, campaign_medium, campaign_name, campaign_term, campaign_content, device_type, device_os, device_browser, device_app_version, geo_country, geo_region, geo_city, properties';
    const [before] = await queryRows<Record<string, unknown>>(client, `SELECT ${columns} FROM ${database}.events`);
    await migrate(client, { database, schemaDir: DEFAULT_SCHEMA_DIR });
    const [after] = await queryRows<Record<string, unknown>>(client, `SELECT ${columns}, raw FROM ${database}.events`);
    const { raw, ...values } = after as Record<string, unknown>;
    expect(values).toEqual(before);
    // raw is an event of our own format, which recalculation parses like any message.
    const parsed = parseEvent(String(raw));
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && parsed.valid).toMatchObject({ event_id: 'imp-1', timestamp: Date.parse('2024-05-01T10:00:00.250Z'), key_event: true, page: { url: 'https://ex.com/?q="x"' } });
    // Read from raw now: the columns are ALIAS columns.
    const kinds = await queryRows<{ name: string; default_kind: string }>(
      client,
      "SELECT name, default_kind FROM system.columns WHERE database = {db:String} AND table = 'events' AND name IN ('page_url', 'properties', 'raw', 'type')",
      { db: database },
    );
    expect(Object.fromEntries(kinds.map((k) => [k.name, k.default_kind]))).toEqual({ page_url: 'ALIAS', properties: 'ALIAS', raw: 'DEFAULT', type: '' });
  });

  it('refuses, applying nothing, when an applied file was edited', async () => {
    const database = freshDatabase();
    const dir = schemaCopy();
    await migrate(client, { database, schemaDir: dir });
    appendFileSync(path.join(dir, '001_sessions.sql'), '\n-- an innocent-looking edit\n');
    writeFileSync(
      path.join(dir, '004_new_table.sql'),
      'CREATE TABLE IF NOT EXISTS {database}.should_not_exist {on_cluster} (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
    );

    const attempt = migrate(client, { database, schemaDir: dir });
    await expect(attempt).rejects.toThrow(MigrationError);
    await expect(migrate(client, { database, schemaDir: dir })).rejects.toThrow(
      /refusing to migrate: 001_sessions.sql was applied with checksum [0-9a-f]{12} but now has [0-9a-f]{12}/,
    );
    expect(await tablesOf(database)).not.toContain('should_not_exist');
    expect(await ledgerRows(database)).toBe(SCHEMA_FILES.length);
  });

  it('runs as the migrate command from configuration, reporting on the log', async () => {
    const database = freshDatabase();
    const lines: string[] = [];
    const config = await configFor(database);
    const result = await runMigrate({ config, log: (line) => lines.push(line) });
    expect(result.applied).toEqual(SCHEMA_FILES);
    expect(lines.at(-1)).toBe(`migrate: ${database}: applied ${SCHEMA_FILES.length} schema files, 0 were applied before`);
    await runMigrate({ config, log: (line) => lines.push(line) });
    expect(lines.at(-1)).toBe(`migrate: ${database} is up to date (${SCHEMA_FILES.length} schema files applied before)`);
  });

  it('names the file and statement the server rejects', async () => {
    const database = freshDatabase();
    const dir = schemaCopy();
    writeFileSync(path.join(dir, '004_broken.sql'), 'CREATE TABLE IF NOT EXISTS {database}.broken {on_cluster} (x NoSuchType) ENGINE = Memory;\n');
    await expect(migrate(client, { database, schemaDir: dir })).rejects.toThrow(/^004_broken.sql: .*NoSuchType/s);
    // Everything before the broken file was applied and recorded; the broken one (and all after it) not.
    expect((await appliedMigrations(client, database)).map((a) => a.name)).toEqual(SCHEMA_FILES.filter((name) => name < '004'));
  });
});
