/**
 * The pure parts of the migrations runner (file order, checksums, what to apply, statement
 * splitting, placeholders) and the rules every file in schemas/clickhouse follows.
 */
import path from 'node:path';
import {
  BOOTSTRAP_FILE,
  DEFAULT_SCHEMA_DIR,
  MigrationError,
  checksumOf,
  onClusterClause,
  orderSchemaFiles,
  planMigrations,
  readSchemaFiles,
  renderSchema,
  splitStatements,
  type SchemaFile,
} from '../../../src/clickhouse/migrations';
import { createdTable, declaredSortingKey, normalizeKey, rebuildNames } from '../../../src/clickhouse/rebuild-table';
import { SESSION_FIELDS } from '../../../src/engine/session-row';

function file(name: string, sql = `-- ${name}`): Omit<SchemaFile, 'number'> {
  return { name, sql, checksum: checksumOf(sql) };
}

describe('checksumOf', () => {
  it('is the hex SHA-256 of the text', () => {
    expect(checksumOf('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(checksumOf(Buffer.from('abc'))).toBe(checksumOf('abc'));
  });
});

describe('orderSchemaFiles', () => {
  it('orders by the numeric prefix, not the text', () => {
    const ordered = orderSchemaFiles([file('10_ten.sql'), file('002_two.sql'), file('001_one.sql'), file('9_nine.sql')]);
    expect(ordered.map((f) => f.name)).toEqual(['001_one.sql', '002_two.sql', '9_nine.sql', '10_ten.sql']);
    expect(ordered.map((f) => f.number)).toEqual([1, 2, 9, 10]);
  });

  it('rejects two files with the same number', () => {
    expect(() => orderSchemaFiles([file('003_a.sql'), file('003_b.sql')])).toThrow(/003_a.sql and 003_b.sql share the number 3/);
  });

  it('rejects names without a number', () => {
    expect(() => orderSchemaFiles([file('sessions.sql')])).toThrow(MigrationError);
    expect(() => orderSchemaFiles([file('001-sessions.sql')])).toThrow(/expected a name like/);
  });
});

describe('planMigrations', () => {
  const files = orderSchemaFiles([file('000_ledger.sql'), file('001_a.sql'), file('002_b.sql')]);
  const [f0, f1, f2] = files as [SchemaFile, SchemaFile, SchemaFile];
  const applied = (f: SchemaFile, checksum = f.checksum) => ({ name: f.name, checksum, appliedAt: '2024-01-01 00:00:00.000' });

  it('applies everything on an empty ledger, in order', () => {
    const plan = planMigrations(files, []);
    expect(plan.pending.map((f) => f.name)).toEqual(['000_ledger.sql', '001_a.sql', '002_b.sql']);
    expect(plan.alreadyApplied).toEqual([]);
  });

  it('applies only what is not recorded', () => {
    const plan = planMigrations(files, [applied(f0), applied(f1)]);
    expect(plan.pending.map((f) => f.name)).toEqual(['002_b.sql']);
    expect(plan.alreadyApplied.map((f) => f.name)).toEqual(['000_ledger.sql', '001_a.sql']);
  });

  it('applies a file added below the newest applied one (a merged branch)', () => {
    const plan = planMigrations(files, [applied(f0), applied(f2)]);
    expect(plan.pending.map((f) => f.name)).toEqual(['001_a.sql']);
  });

  it('refuses when an applied file was edited, naming every such file', () => {
    const run = () => planMigrations(files, [applied(f0), applied(f1, checksumOf('old text')), applied(f2, checksumOf('older'))]);
    expect(run).toThrow(MigrationError);
    expect(run).toThrow(/001_a.sql was applied with checksum [0-9a-f]{12} but now has [0-9a-f]{12}.*002_b.sql/);
  });

  it('refuses when runners of two releases recorded different checksums', () => {
    expect(() => planMigrations(files, [applied(f0), applied(f1), applied(f1, checksumOf('other'))])).toThrow(/001_a.sql/);
  });

  it('reports recorded files it does not know without refusing', () => {
    const plan = planMigrations(files, [applied(f0), { name: '007_future.sql', checksum: 'x', appliedAt: '' }]);
    expect(plan.unknown).toEqual(['007_future.sql']);
    expect(plan.pending.map((f) => f.name)).toEqual(['001_a.sql', '002_b.sql']);
  });
});

describe('splitStatements', () => {
  it('splits at top-level semicolons and drops comments and empty statements', () => {
    const sql = `-- header; with a semicolon
CREATE TABLE a (x String) ENGINE = Memory;
/* block; comment */
;;
CREATE TABLE b (y String) ENGINE = Memory -- trailing; comment
`;
    expect(splitStatements(sql)).toEqual(['CREATE TABLE a (x String) ENGINE = Memory', 'CREATE TABLE b (y String) ENGINE = Memory']);
  });

  it('keeps semicolons and comment markers inside quotes', () => {
    const sql = `SELECT 'a;b', 'it''s; -- not a comment', 'back\\'slash;', "col;umn", \`id;ent\`; SELECT 2`;
    expect(splitStatements(sql)).toEqual([
      `SELECT 'a;b', 'it''s; -- not a comment', 'back\\'slash;', "col;umn", \`id;ent\``,
      'SELECT 2',
    ]);
  });

  it('rejects an unterminated quote or comment', () => {
    expect(() => splitStatements("SELECT 'open")).toThrow(/unterminated ' quote/);
    expect(() => splitStatements('SELECT 1 /* open')).toThrow(/unterminated/);
  });
});

describe('renderSchema', () => {
  const sql = 'CREATE TABLE IF NOT EXISTS {database}.t {on_cluster} (x String) ENGINE = MergeTree ORDER BY x';

  it('drops {on_cluster} without a cluster', () => {
    expect(renderSchema(sql, { database: 'db1', cluster: '' })).toBe(
      'CREATE TABLE IF NOT EXISTS db1.t  (x String) ENGINE = MergeTree ORDER BY x',
    );
  });

  it('quotes the cluster name, so macros and odd characters survive', () => {
    expect(renderSchema(sql, { database: 'db1', cluster: '{cluster}' })).toContain("db1.t ON CLUSTER '{cluster}' (x String)");
    expect(onClusterClause("it's")).toBe("ON CLUSTER 'it\\'s'");
    expect(onClusterClause(undefined)).toBe('');
  });
});

describe('schemas/clickhouse', () => {
  const files = readSchemaFiles(DEFAULT_SCHEMA_DIR);
  const statements = files.flatMap((f) => splitStatements(f.sql).map((sql) => ({ file: f.name, sql })));

  it('counts 001 and 002 as applied where they were applied before their comments were reworded', () => {
    const shipped: Record<string, string> = {
      '001_sessions.sql': '6316d98b3a3940a6b8a82fececee87c24fa456f614ea4b00162467ad46624020',
      '002_events.sql': 'ced67d959aaf330355d73ffc87bbce82681bb389b67a60c469c10c1ebcfa6427',
    };
    const ledger = files.map((f) => ({ name: f.name, checksum: shipped[f.name] ?? f.checksum, appliedAt: '2024-01-01 00:00:00.000' }));
    expect(files.filter((f) => shipped[f.name] !== undefined && shipped[f.name] !== f.checksum).map((f) => f.name)).toEqual(['001_sessions.sql', '002_events.sql']);
    expect(planMigrations(files, ledger).pending).toEqual([]);
    // Any other former text of those files is still refused.
    expect(() => planMigrations(files, [...ledger, { name: '001_sessions.sql', checksum: checksumOf('other'), appliedAt: '' }])).toThrow(/001_sessions.sql/);
  });

  it('is found relative to the module, starting with the ledger', () => {
    expect(DEFAULT_SCHEMA_DIR).toBe(path.resolve(__dirname, '../../../schemas/clickhouse'));
    expect(files[0]?.name).toBe(BOOTSTRAP_FILE);
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['001_sessions.sql', '002_events.sql', '003_rollups.sql']));
  });

  // The one exception to CREATE … IF NOT EXISTS: backfilling identity_links, whose rows are
  // combined by max(), so inserting the same links again changes nothing.
  const IDEMPOTENT_INSERT = /^INSERT INTO \{database\}\.identity_links\s+SELECT\b/;
  // And changes of existing tables that are the same when made twice: a column's definition, or
  // an update of exactly the rows it has not been applied to (events without raw, 014).
  const IDEMPOTENT_ALTER = /^ALTER TABLE \{database\}\.[a-z_]+ \{on_cluster\}\s+(MODIFY COLUMN\b|UPDATE raw = [\s\S]*\bWHERE raw = ''\s+SETTINGS mutations_sync = 2$)/;
  // Views dropped to be created again (015 declares them per site): a view holds no data.
  const DROP_VIEW = /^DROP VIEW IF EXISTS \{database\}\.[a-z_]+ \{on_cluster\}$/;
  const creates = statements.filter(({ sql }) => !IDEMPOTENT_INSERT.test(sql) && !IDEMPOTENT_ALTER.test(sql) && !DROP_VIEW.test(sql));

  it('only has idempotent statements: CREATE … IF NOT EXISTS, an insert into a max() table, or a MODIFY COLUMN', () => {
    expect(statements.filter(({ sql }) => IDEMPOTENT_ALTER.test(sql)).map(({ file }) => file)).toEqual(['014_events_raw.sql', '014_events_raw.sql', '014_events_raw.sql']);
    // Every MODIFY COLUMN of a statement (a column that is changed twice would depend on order).
    for (const { sql } of statements.filter(({ sql }) => sql.startsWith('ALTER'))) expect(sql).not.toMatch(/\bDROP\b|\bRENAME\b/);
    for (const { file: name, sql } of creates) {
      expect({ name, sql: sql.slice(0, 80) }).toEqual({ name, sql: expect.stringMatching(/^CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS /) });
    }
    const inserts = statements.filter(({ sql }) => sql.startsWith('INSERT'));
    expect(inserts.map(({ sql }) => sql)).toEqual([expect.stringMatching(IDEMPOTENT_INSERT)]);
    const links = statements.find(({ sql }) => sql.includes('{database}.identity_links {on_cluster}'));
    expect(links?.sql).toMatch(/SimpleAggregateFunction\(max,[\s\S]*ENGINE = AggregatingMergeTree/);
  });

  it('names every object as {database}.name and creates it {on_cluster}', () => {
    for (const { sql } of creates) {
      expect(sql).toMatch(/^CREATE [A-Z ]+ IF NOT EXISTS \{database\}\.[a-z_]+ \{on_cluster\}/);
      for (const from of sql.matchAll(/\b(?:FROM|TO)\s+([\w.{}]+)/g)) expect(from[1]).toMatch(/^\{database\}\./);
    }
    for (const { sql } of statements) for (const join of sql.matchAll(/\bJOIN\s+([\w.{}]+)/g)) expect(join[1]).toMatch(/^\{database\}\./);
  });

  it('drops only views, and creates each view it drops again in the same file', () => {
    const drops = statements.filter(({ sql }) => sql.startsWith('DROP'));
    for (const { file: name, sql } of drops) {
      expect(sql).toMatch(DROP_VIEW);
      const view = /\}\.([a-z_]+) /.exec(sql)?.[1] as string;
      expect(statements.some((s) => s.file === name && new RegExp(`^CREATE (MATERIALIZED )?VIEW IF NOT EXISTS \\{database\\}\\.${view} `).test(s.sql))).toBe(true);
    }
  });

  it('gives every table of events, sessions, roll-ups and people site as its first column and the first of its sorting key (015)', () => {
    const sites = files.find((f) => f.name === '015_sites.sql') as SchemaFile;
    const tables = splitStatements(renderSchema(sites.sql, { database: 'db', cluster: '' })).filter((sql) => sql.startsWith('CREATE TABLE'));
    expect(tables.map((sql) => createdTable(sql))).toEqual(['sessions', 'events', 'sessions_daily', 'users_daily', 'identity_links']);
    for (const sql of tables) {
      expect(sql).toMatch(/\(\s+site\s+LowCardinality\(String\) DEFAULT 'default',/);
      expect(declaredSortingKey(sql)).toMatch(/^site,/);
    }
    for (const sql of splitStatements(sites.sql).filter((sql) => /^CREATE (MATERIALIZED )?VIEW/.test(sql))) {
      expect(sql).toMatch(/^CREATE [A-Z ]+ \{database\}\.\w+ \{on_cluster\}\s+(TO \S+\s+)?AS SELECT\s+(s\.)?site\b|SELECT\s+\*,/);
    }
  });

  it('gives sessions exactly the session fields in SESSION_FIELDS order, then is_open, sign, version', () => {
    const sessions = statements.find((s) => s.sql.includes('{database}.sessions {on_cluster}'));
    const columns = [...(sessions?.sql ?? '').matchAll(/^\s{4}([a-z_]+)\s+[A-Z]/gm)].map((m) => m[1]);
    expect(columns).toEqual([...(SESSION_FIELDS as readonly string[]).filter((f) => f !== 'site'), 'is_open', 'sign', 'version']);
    // 015: the site first.
    const bySite = statements.filter((s) => s.sql.includes('{database}.sessions {on_cluster}')).at(-1);
    const siteColumns = [...(bySite?.sql ?? '').matchAll(/^\s{4}([a-z_]+)\s+[A-Z]/gm)].map((m) => m[1]);
    expect(siteColumns).toEqual(['site', ...(SESSION_FIELDS as readonly string[]).filter((f) => f !== 'site'), 'is_open', 'sign', 'version']);
  });
});

describe('a declared sorting key', () => {
  it('is the ORDER BY of a CREATE TABLE, as system.tables writes it (without spaces), the version last for VersionedCollapsingMergeTree', () => {
    expect(declaredSortingKey('CREATE TABLE IF NOT EXISTS d.t (x String) ENGINE = MergeTree ORDER BY (site, toDate(at), x) SETTINGS a = 1')).toBe('site,toDate(at),x');
    expect(declaredSortingKey('CREATE TABLE IF NOT EXISTS d.t (x String) ENGINE = MergeTree ORDER BY x')).toBe('x');
    expect(declaredSortingKey('CREATE TABLE IF NOT EXISTS d.t (x String) ENGINE = VersionedCollapsingMergeTree(sign, version) ORDER BY (x, y)')).toBe('x,y,version');
    expect(declaredSortingKey('CREATE TABLE IF NOT EXISTS d.t (x String) ENGINE = Memory')).toBeNull();
    expect(normalizeKey('site, toDate(started_at), user_key, session_id, version')).toBe('site,toDate(started_at),user_key,session_id,version');
    expect(normalizeKey('(a, b)')).toBe('a,b');
    expect(normalizeKey('(a), (b)')).toBe('(a),(b)');
    expect(rebuildNames('sessions', '015')).toEqual({ copy: 'sessions__015', previous: 'sessions__pre015' });
  });
});
