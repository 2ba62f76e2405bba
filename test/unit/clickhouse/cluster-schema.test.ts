/**
 * `migrate` on a ClickHouse cluster: schemas/clickhouse rendered as Replicated* local tables under
 * Distributed tables sharded by cityHash64(user_key), roll-up views per shard, a ledger replicated
 * to every node. No cluster runs here, so every rendered statement goes through the real
 * ClickHouse parser (chdb's formatQuery) and is checked in its formatted, canonical form.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Session, queryBind } from 'chdb';
import {
  CLUSTER_CLIENT_SETTINGS,
} from '../../../src/clickhouse/client';
import { ClusterRenderError, LOCAL_SUFFIX, renderForCluster } from '../../../src/clickhouse/cluster-schema';
import {
  DEFAULT_SCHEMA_DIR,
  migrate,
  readSchemaFiles,
  renderSchema,
  renderStatements,
  schemaObjectKinds,
  splitStatements,
} from '../../../src/clickhouse/migrations';
import { loadConfig } from '../../../src/config';
import { chdbClient } from '../../support/chdb-client';

const FILES = readSchemaFiles(DEFAULT_SCHEMA_DIR);
const TARGET = { database: 'analytics', cluster: 'sessionizer' };
const KINDS = schemaObjectKinds(FILES, TARGET);
const RENDERED = FILES.flatMap((file) => renderStatements(file.sql, TARGET, KINDS));

/** The statement as ClickHouse's parser reads it, formatted back; throws on a syntax error. */
function format(statement: string): string {
  return queryBind('SELECT formatQuery({q:String})', { q: statement }, 'TSVRaw').trim();
}

const FORMATTED = RENDERED.map(format);

/** name → engine clause, of every CREATE TABLE, from the formatted text. */
function engines(formatted: readonly string[], database = 'analytics'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const text of formatted) {
    const name = new RegExp(`^CREATE TABLE IF NOT EXISTS ${database}\\.(\\w+)`).exec(text)?.[1];
    const engine = /^ENGINE = (.*)$/m.exec(text)?.[1];
    if (name && engine) out[name] = engine;
  }
  return out;
}

describe('the schema on a cluster', () => {
  it('parses, every statement, with the ClickHouse parser, and runs ON CLUSTER', () => {
    // a ledger, 5 tables as local + Distributed, 3 materialized views, 4 views, 1 backfill; then
    // 014: the update of events_local, and two column changes on events_local and events; then
    // 015: 7 views dropped, the 5 tables declared again (local + Distributed), 3 + 4 views
    expect(RENDERED.length).toBe(24 + 7 + 10 + 7);
    for (const [i, text] of FORMATTED.entries()) {
      // DDL runs ON CLUSTER; the backfill runs once, on the node migrate is connected to.
      if (text.startsWith('INSERT')) expect(text).not.toContain('ON CLUSTER');
      else if (text.startsWith('ALTER')) expect(text).toMatch(/^ALTER TABLE analytics\.events(_local)? ON CLUSTER sessionizer\b/);
      else if (text.startsWith('DROP')) expect(text).toMatch(/^DROP VIEW IF EXISTS analytics\.\w+ ON CLUSTER sessionizer$/);
      else expect(text).toMatch(/^CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS analytics\.\w+ ON CLUSTER sessionizer\b/);
      // Formatting is a fixed point: the parser read the statement whole, not a prefix of it.
      expect(format(text)).toBe(text);
      expect(RENDERED[i]).not.toContain('non_replicated_deduplication_window');
    }
  });

  it('replicates every table, shards data tables by cityHash64(user_key) through Distributed', () => {
    const path = (table: string) => `'/clickhouse/tables/{shard}/analytics/${table}'`;
    expect(engines(FORMATTED)).toEqual({
      schema_migrations: "ReplicatedReplacingMergeTree('/clickhouse/tables/all/analytics/schema_migrations', '{shard}-{replica}')",
      sessions_local: `ReplicatedVersionedCollapsingMergeTree(${path('sessions_local')}, '{replica}', sign, version)`,
      sessions: "Distributed('sessionizer', 'analytics', 'sessions_local', cityHash64(user_key))",
      events_local: `ReplicatedReplacingMergeTree(${path('events_local')}, '{replica}')`,
      events: "Distributed('sessionizer', 'analytics', 'events_local', cityHash64(user_key))",
      sessions_daily_local: `ReplicatedSummingMergeTree(${path('sessions_daily_local')}, '{replica}')`,
      sessions_daily: "Distributed('sessionizer', 'analytics', 'sessions_daily_local')",
      users_daily_local: `ReplicatedSummingMergeTree(${path('users_daily_local')}, '{replica}')`,
      users_daily: "Distributed('sessionizer', 'analytics', 'users_daily_local', cityHash64(user_key))",
      // A device's links on the shard of its events (user_key = anonymous_id when there is one).
      identity_links_local: `ReplicatedAggregatingMergeTree(${path('identity_links_local')}, '{replica}')`,
      identity_links: "Distributed('sessionizer', 'analytics', 'identity_links_local', cityHash64(anonymous_id))",
    });
  });

  it('keeps the local tables as the single-server ones (columns, keys, settings), with the replicated dedup window', () => {
    const single = FILES.flatMap((file) => splitStatements(renderSchema(file.sql, { database: 'analytics', cluster: 'sessionizer' }))).map(format);
    const withoutEngine = (text: string) => text.replace(/^ENGINE = .*$/m, '').replace(/_local\b/g, '').replace('replicated_deduplication_window', 'WINDOW').replace('non_WINDOW', 'WINDOW').replace(/GLOBAL /g, '').replace('\nSETTINGS insert_distributed_sync = 1\n', ' ');
    // (014 changes the Distributed table's columns too, as the local table's.)
    const locals = FORMATTED.filter((text) => !/^ENGINE = Distributed/m.test(text) && !/^ALTER TABLE analytics\.events ON/.test(text));
    expect(locals.map(withoutEngine)).toEqual(single.map((text) => withoutEngine(text).replace('non_replicated_deduplication_window', 'WINDOW')));
    const sessions = FORMATTED.find((text) => text.includes('analytics.sessions_local ON CLUSTER')) as string;
    expect(sessions).toContain('SETTINGS replicated_deduplication_window = 10000');
    // A real MergeTree setting of this ClickHouse, as is the insert setting the cluster client adds.
    const known = (table: string, name: string) =>
      queryBind(`SELECT count() FROM system.${table} WHERE name = {name:String}`, { name }, 'TSVRaw').trim();
    expect(known('merge_tree_settings', 'replicated_deduplication_window')).toBe('1');
    for (const name of Object.keys(CLUSTER_CLIENT_SETTINGS)) expect(known('settings', name)).toBe('1');
  });

  it('makes the Distributed tables copies of the local ones (AS), created right after them', () => {
    for (const [i, text] of FORMATTED.entries()) {
      const distributed = /^CREATE TABLE IF NOT EXISTS analytics\.(\w+) ON CLUSTER sessionizer AS analytics\.(\w+)$/m.exec(text);
      if (!distributed) continue;
      expect(distributed[2]).toBe(`${distributed[1]}_local`);
      expect(FORMATTED[i - 1]).toMatch(new RegExp(`^CREATE TABLE IF NOT EXISTS analytics\\.${distributed[2]} ON CLUSTER`));
    }
  });

  it('rolls up per shard: each view reads the local sessions and writes the local roll-up', () => {
    const views = FORMATTED.filter((text) => text.startsWith('CREATE MATERIALIZED VIEW'));
    expect(views.map((text) => [/VIEW IF NOT EXISTS analytics\.(\w+)/.exec(text)?.[1], /\bTO analytics\.(\w+)/.exec(text)?.[1], /\bFROM analytics\.(\w+)/.exec(text)?.[1]])).toEqual([
      ['sessions_daily_mv', 'sessions_daily_local', 'sessions_local'],
      ['users_daily_mv', 'users_daily_local', 'sessions_local'],
      ['identity_links_mv', 'identity_links_local', 'events_local'],
      // 015: the same, per site
      ['sessions_daily_mv', 'sessions_daily_local', 'sessions_local'],
      ['users_daily_mv', 'users_daily_local', 'sessions_local'],
      ['identity_links_mv', 'identity_links_local', 'events_local'],
    ]);
  });

  it('makes plain views read through Distributed, with GLOBAL joins, and backfills once through Distributed', () => {
    const views = FORMATTED.filter((text) => text.startsWith('CREATE VIEW'));
    const people = ['identity_map', 'session_persons', 'person_sessions', 'persons'];
    expect(views.map((text) => /VIEW IF NOT EXISTS analytics\.(\w+)/.exec(text)?.[1])).toEqual([...people, ...people]);
    for (const text of views) expect(text).not.toMatch(/_local\b/);
    for (const sessionPersons of [views[1] as string, views[5] as string]) {
      // A person spans user keys, hence shards: both joins' right sides are computed over every shard.
      expect(sessionPersons.match(/\bJOIN\b/g)).toHaveLength(2);
      expect(sessionPersons.match(/\bGLOBAL LEFT JOIN\b/g)).toHaveLength(2);
      expect(sessionPersons).toMatch(/FROM analytics\.sessions AS s\s+FINAL\n/);
    }
    // 015: both joins within the session's site.
    expect(views[5]).toMatch(/ON \(s\.site = m\.site\) AND \(s\.anonymous_id = m\.anonymous_id\)/);
    const insert = FORMATTED.find((text) => text.startsWith('INSERT')) as string;
    expect(insert).toMatch(/^INSERT INTO analytics\.identity_links\nSETTINGS insert_distributed_sync = 1\nSELECT/);
    expect(insert).toMatch(/FROM analytics\.events\b(?!_local)/);
  });

  it('takes the Keeper path and replica name from the configuration', () => {
    const config = loadConfig({
      CLICKHOUSE_CLUSTER: '{cluster}',
      CLICKHOUSE_REPLICATED_PATH: '/ch/{installation}/{shard}/{database}.{table}',
      CLICKHOUSE_REPLICA_NAME: 'r-{replica}',
    });
    const target = { ...config.clickhouse, database: 'db' };
    const kinds = schemaObjectKinds(FILES, target);
    const formatted = FILES.flatMap((file) => renderStatements(file.sql, target, kinds)).map(format);
    const all = engines(formatted, 'db');
    expect(all.sessions_local).toBe("ReplicatedVersionedCollapsingMergeTree('/ch/{installation}/{shard}/db.sessions_local', 'r-{replica}', sign, version)");
    expect(all.schema_migrations).toBe("ReplicatedReplacingMergeTree('/ch/{installation}/all/db.schema_migrations', '{shard}-r-{replica}')");
    expect(all.sessions).toBe("Distributed('{cluster}', 'db', 'sessions_local', cityHash64(user_key))");
    expect(formatted[0]).toContain("ON CLUSTER `{cluster}`");
  });

  it('refuses a Keeper path or replica name that would mix shards, tables or replicas', () => {
    expect(() => loadConfig({ CLICKHOUSE_REPLICATED_PATH: '/clickhouse/tables/{table}' })).toThrow(/CLICKHOUSE_REPLICATED_PATH: must contain \{shard\}/);
    expect(() => loadConfig({ CLICKHOUSE_REPLICATED_PATH: '/clickhouse/tables/{shard}' })).toThrow(/must contain \{table\}/);
    expect(() => loadConfig({ CLICKHOUSE_REPLICA_NAME: 'one' })).toThrow(/CLICKHOUSE_REPLICA_NAME: must contain \{replica\}/);
  });

  it('leaves a single server exactly as the files say', () => {
    for (const file of FILES) {
      expect(renderStatements(file.sql, { database: 'analytics', cluster: '' })).toEqual(splitStatements(renderSchema(file.sql, { database: 'analytics', cluster: '' })));
    }
  });
});

/**
 * The layout run as one node of the cluster would see it, on chdb (which has no Keeper and no
 * cluster): ON CLUSTER dropped, each Replicated engine back to its plain variant (minus the Keeper
 * path and replica name), each Distributed table a Merge table over its local one (read-only,
 * like a Distributed read of one shard), and an insert into a Distributed table goes to its local
 * table, as on a one-shard cluster. What is left is executable: the local tables take the
 * rows a shard receives, the views feed the local roll-ups, and reads by the Distributed names
 * see them.
 */
function asOneNode(statement: string): string {
  return statement
    .replace(/ ON CLUSTER '[^']*'/, '')
    .replace(/^INSERT INTO (\w+)\.(\w+)\s/, `INSERT INTO $1.$2${LOCAL_SUFFIX} `)
    .replace(/ENGINE = Replicated(\w+MergeTree)\('[^']*', '[^']*'(?:, )?/, 'ENGINE = $1(')
    .replace(/ENGINE = Distributed\('[^']*', '([^']+)', '([^']+)'.*\)$/m, (_, database: string, local: string) => `ENGINE = Merge('${database}', '^${local}$')`);
}

/** migrate's client on a chdb session, each statement run as one node of the cluster would. */
function oneNodeClient(session: Session, afterEach: (statement: string) => void = () => undefined): ClickHouseClient {
  return chdbClient(session, asOneNode, afterEach);
}

/** schemas/clickhouse up to and including file number `last`, in a temporary folder. */
function schemaUpTo(last: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sessionizer-schema-'));
  for (const file of FILES.filter((f) => f.number <= last)) writeFileSync(path.join(dir, file.name), file.sql);
  return dir;
}

describe('the cluster layout, run on one node', () => {
  let session: Session;

  beforeAll(async () => {
    session = new Session();
    await migrate(oneNodeClient(session), TARGET);
  });
  afterAll(() => session.cleanup());

  const rows = (sql: string) => session.query(sql, 'JSONCompact') as string;

  it('creates every table and view, under the names the project queries', () => {
    expect(JSON.parse(rows("SELECT name, engine FROM system.tables WHERE database = 'analytics' ORDER BY name")).data).toEqual([
      ['events', 'Merge'],
      ['events_local', 'ReplacingMergeTree'],
      ['identity_links', 'Merge'],
      ['identity_links_local', 'AggregatingMergeTree'],
      ['identity_links_mv', 'MaterializedView'],
      ['identity_map', 'View'],
      ['person_sessions', 'View'],
      ['persons', 'View'],
      ['schema_migrations', 'ReplacingMergeTree'],
      ['session_persons', 'View'],
      ['sessions', 'Merge'],
      ['sessions_daily', 'Merge'],
      ['sessions_daily_local', 'SummingMergeTree'],
      ['sessions_daily_mv', 'MaterializedView'],
      ['sessions_local', 'VersionedCollapsingMergeTree'],
      ['users_daily', 'Merge'],
      ['users_daily_local', 'SummingMergeTree'],
      ['users_daily_mv', 'MaterializedView'],
    ]);
  });

  it("rolls up the rows a shard receives, cancels included, readable through the Distributed names", () => {
    const row = (id: string, user: string, sign: number) =>
      `('${id}', '${user}', '2024-05-02 10:00:00.000', '2024-05-02 10:05:00.000', 300000, 4, 3, 'google.com', 'referral', '', 'web', 'mobile', 'DE', 1, 0, 0, ${sign}, 1)`;
    session.query(
      'INSERT INTO analytics.sessions_local (session_id, user_key, started_at, ended_at, duration_ms, events, views, source, medium, campaign, channel, device_type, country, is_engaged, is_bounce, is_open, sign, version) VALUES ' +
        [row('s1', 'u1', 1), row('s2', 'u2', 1), row('s2', 'u2', -1), row('s3', 'u2', 1)].join(', '),
    );
    expect(JSON.parse(rows('SELECT sum(sessions), sum(views) FROM analytics.sessions_daily')).data).toEqual([[2, 6]]);
    expect(JSON.parse(rows('SELECT count() FROM (SELECT user_key FROM analytics.users_daily GROUP BY user_key HAVING sum(sessions) > 0)')).data).toEqual([[2]]);
    expect(JSON.parse(rows('SELECT session_id FROM analytics.sessions FINAL WHERE sign = 1 ORDER BY session_id')).data).toEqual([['s1'], ['s3']]);
  });

  it('links devices from the events a shard receives, and joins sessions to persons through the GLOBAL joins', () => {
    const event = (id: string, anonymous: string, user: string, at: string, keyEvent = 0) =>
      `('${id}', '${anonymous || user}', '${anonymous}', '${user}', '2024-05-02 ${at}', 'track', ${keyEvent})`;
    session.query(
      'INSERT INTO analytics.events_local (event_id, user_key, anonymous_id, user_id, timestamp, type, key_event) VALUES ' +
        [event('e1', 'a1', '', '10:01:00.000'), event('e2', 'a1', 'p1', '10:02:00.000', 1), event('e3', 'a9', 'p9', '09:00:00.000')].join(', '),
    );
    expect(JSON.parse(rows('SELECT anonymous_id, user_id FROM analytics.identity_map ORDER BY anonymous_id')).data).toEqual([['a1', 'p1'], ['a9', 'p9']]);
    // A backfill of the links again (013's, per site as 015 keys them): max() leaves the map as it was.
    session.query(
      "INSERT INTO analytics.identity_links_local SELECT site, anonymous_id, max(tuple(timestamp, event_id, user_id)) FROM analytics.events WHERE anonymous_id != '' AND user_id != '' GROUP BY site, anonymous_id",
    );
    expect(JSON.parse(rows('SELECT anonymous_id, user_id FROM analytics.identity_map ORDER BY anonymous_id')).data).toEqual([['a1', 'p1'], ['a9', 'p9']]);
    const row = (id: string, user: string, anonymous: string, from: string, to: string) =>
      `('${id}', '${user}', '${anonymous}', '2024-05-02 ${from}', '2024-05-02 ${to}', 1, 1)`;
    session.query(
      'INSERT INTO analytics.sessions_local (session_id, user_key, anonymous_id, started_at, ended_at, sign, version) VALUES ' +
        [row('t1', 'a1', 'a1', '10:00:00.000', '10:05:00.000'), row('t2', 'p1', '', '11:00:00.000', '11:01:00.000')].join(', '),
    );
    expect(JSON.parse(rows("SELECT session_id, person_id, person_session_number, is_converting FROM analytics.person_sessions WHERE person_id = 'p1' ORDER BY session_id")).data).toEqual([
      ['t1', 'p1', 1, 1], // the device's anonymous session, claimed by the login; its key event at 10:02
      ['t2', 'p1', 2, 0],
    ]);
    expect(JSON.parse(rows("SELECT sessions, user_keys FROM analytics.persons WHERE person_id = 'p1'")).data).toEqual([[2, 2]]);
  });
});

describe('015 on a cluster with data, run on one node', () => {
  const columns = 'session_id, user_key, started_at, ended_at, sign, version';
  let session: Session;
  let dir: string;

  beforeAll(async () => {
    session = new Session();
    dir = schemaUpTo(14);
  });
  afterAll(() => {
    session.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const value = (sql: string): unknown => (JSON.parse(session.query(sql, 'JSONCompact') as string) as { data: unknown[][] }).data;

  async function upgraded(database: string, stopAt?: RegExp): Promise<void> {
    const target = { ...TARGET, database };
    await migrate(oneNodeClient(session), { ...target, schemaDir: dir });
    session.query(
      `INSERT INTO ${database}.sessions_local (${columns}) VALUES ('s1', 'u1', '2024-05-02 10:00:00', '2024-05-02 10:05:00', 1, 1), ` +
        "('s2', 'u2', '2024-05-02 11:00:00', '2024-05-02 11:00:00', 1, 1)",
    );
    // A cancel row in a part of its own, so that it stays until a merge.
    session.query(`INSERT INTO ${database}.sessions_local (${columns}) VALUES ('s2', 'u2', '2024-05-02 11:00:00', '2024-05-02 11:00:00', -1, 1)`);
    session.query(`INSERT INTO ${database}.events_local (event_id, user_key, anonymous_id, user_id, timestamp, type, raw) VALUES ('e1', 'a1', 'a1', 'p1', '2024-05-02 10:01:00', 'login', '{}')`);
    if (stopAt) {
      let stopped = false;
      const client = oneNodeClient(session, (statement) => {
        if (!stopped && stopAt.test(statement)) {
          stopped = true;
          throw new Error('stopped');
        }
      });
      await expect(migrate(client, target)).rejects.toThrow('stopped');
    }
    await migrate(oneNodeClient(session), target);
  }

  it('sends each statement of a rebuild ON CLUSTER (the copy excepted), in a form the ClickHouse parser reads whole', async () => {
    const database = `up_${Math.random().toString(36).slice(2, 8)}`;
    const target = { ...TARGET, database };
    await migrate(oneNodeClient(session), { ...target, schemaDir: dir });
    // (The standalone parser is not usable while a session is open: the session's own.)
    const format = (text: string) => session.queryBind('SELECT formatQuery({q:String})', { q: text }, 'TSVRaw').trim();
    const sent: string[] = [];
    await migrate(chdbClient(session, (statement) => (sent.push(statement), asOneNode(statement))), target);
    const rebuild = sent.filter((text) => /^(RENAME|TRUNCATE|DROP TABLE|INSERT INTO \w+\.\w+__015)/.test(text));
    expect(rebuild.filter((text) => text.startsWith('RENAME')).map(format)).toEqual(
      ['sessions', 'events', 'sessions_daily', 'users_daily', 'identity_links'].map(
        (t) => `RENAME TABLE ${database}.${t}_local TO ${database}.${t}__pre015_local, ${database}.${t}__015_local TO ${database}.${t}_local ON CLUSTER sessionizer`,
      ),
    );
    for (const text of rebuild) {
      expect(format(format(text))).toBe(format(text));
      if (text.startsWith('INSERT')) expect(text).toMatch(/^INSERT INTO \w+\.\w+__015 \(.*\) SETTINGS optimize_on_insert = 0, insert_distributed_sync = 1\b/);
      else expect(format(text)).toMatch(/ ON CLUSTER sessionizer\b/);
    }
  });

  it.each([
    ['in one run', undefined],
    ['stopped after the copy of sessions', /^INSERT INTO \w+\.sessions__015_local\b/],
    ['stopped after the swap of events', /^DROP TABLE IF EXISTS \w+\.events__pre015_local\b/],
    ['stopped after the Distributed sessions_daily was dropped', /^DROP TABLE IF EXISTS \w+\.sessions_daily SYNC/],
  ])('moves every row to the new local tables, site first, %s', async (_name, stopAt) => {
    const database = `up_${Math.random().toString(36).slice(2, 8)}`;
    await upgraded(database, stopAt);
    expect(value(`SELECT name, engine, sorting_key FROM system.tables WHERE database = '${database}' AND name LIKE '%\\_\\_%'`)).toEqual([]);
    expect(value(`SELECT sorting_key FROM system.tables WHERE database = '${database}' AND name = 'sessions_local'`)).toEqual([['site, toDate(started_at), user_key, session_id, version']]);
    expect(value(`SELECT engine FROM system.tables WHERE database = '${database}' AND name IN ('sessions', 'events', 'sessions_daily', 'users_daily', 'identity_links')`)).toEqual([
      ['Merge'], ['Merge'], ['Merge'], ['Merge'], ['Merge'],
    ]);
    // Read through the Distributed names: every row, once, as site default; the roll-ups too.
    expect(value(`SELECT site, toString(count()), toString(sum(sign)) FROM ${database}.sessions GROUP BY site`)).toEqual([['default', '3', '1']]);
    expect(value(`SELECT site, toString(sum(sessions)) FROM ${database}.sessions_daily GROUP BY site`)).toEqual([['default', '1']]);
    expect(value(`SELECT site, anonymous_id, user_id FROM ${database}.identity_map`)).toEqual([['default', 'a1', 'p1']]);
    // The new views feed the new roll-ups, per site.
    session.query(`INSERT INTO ${database}.sessions_local (site, ${columns}) VALUES ('shop', 's1', 'u1', '2024-05-02 10:00:00', '2024-05-02 10:05:00', 1, 1)`);
    expect(value(`SELECT site, toString(sum(sessions)) FROM ${database}.sessions_daily GROUP BY site ORDER BY site`)).toEqual([['default', '1'], ['shop', '1']]);
  });
});

describe('later schema files on a cluster', () => {
  const layout = { cluster: 'c', replicatedPath: '/clickhouse/tables/{shard}/{database}/{table}', replicaName: '{replica}' };
  const render = (sql: string) => renderForCluster(renderSchema(sql, { database: 'analytics', cluster: 'c' }).trim(), layout, KINDS).map(format);

  it('changes columns on the local and the Distributed table, other changes on the local one only', () => {
    expect(render("ALTER TABLE {database}.events {on_cluster} ADD COLUMN IF NOT EXISTS note String DEFAULT ''")).toEqual([
      "ALTER TABLE analytics.events_local ON CLUSTER c\n    (ADD COLUMN IF NOT EXISTS `note` String DEFAULT '')",
      "ALTER TABLE analytics.events ON CLUSTER c\n    (ADD COLUMN IF NOT EXISTS `note` String DEFAULT '')",
    ]);
    expect(render('ALTER TABLE {database}.sessions {on_cluster} MODIFY TTL toDateTime(started_at) + INTERVAL 2 YEAR')).toEqual([
      'ALTER TABLE analytics.sessions_local ON CLUSTER c\n    (MODIFY TTL toDateTime(started_at) + toIntervalYear(2))',
    ]);
    expect(render('ALTER TABLE {database}.schema_migrations {on_cluster} ADD COLUMN IF NOT EXISTS by String')).toHaveLength(1);
  });

  it('drops both tables of a sharded one', () => {
    expect(render('DROP TABLE IF EXISTS {database}.users_daily {on_cluster} SYNC')).toEqual([
      'DROP TABLE IF EXISTS analytics.users_daily ON CLUSTER c SYNC',
      'DROP TABLE IF EXISTS analytics.users_daily_local ON CLUSTER c SYNC',
    ]);
  });

  it('refuses what it cannot lay out, instead of creating disconnected tables', () => {
    expect(() => render('CREATE TABLE IF NOT EXISTS {database}.scratch {on_cluster} (x String) ENGINE = Memory')).toThrow(ClusterRenderError);
    expect(() => render('RENAME TABLE {database}.events TO {database}.events_old {on_cluster}')).toThrow(/cannot lay this statement out/);
    expect(() => render('ALTER TABLE {database}.nowhere {on_cluster} ADD COLUMN x String')).toThrow(/not a table of the schema/);
    // FINAL through Distributed merges each shard apart: wrong for a roll-up spread over every shard.
    expect(() => render('CREATE VIEW IF NOT EXISTS {database}.v {on_cluster} AS SELECT * FROM {database}.sessions_daily FINAL')).toThrow(/FINAL on sessions_daily/);
    expect(() => render('CREATE VIEW IF NOT EXISTS {database}.v {on_cluster} AS SELECT * FROM {database}.events_local')).toThrow(/reads events_local/);
    expect(() => render('INSERT INTO {database}.sessions_daily SELECT * FROM {database}.sessions_daily')).toThrow(/only tables with a sharding key/);
  });

  it('makes every join and subquery set of a view GLOBAL, once', () => {
    expect(
      render(
        'CREATE VIEW IF NOT EXISTS {database}.v {on_cluster} AS SELECT user_key FROM {database}.events AS e ' +
          'INNER JOIN {database}.sessions AS s USING (user_key) GLOBAL ANY LEFT JOIN {database}.users_daily AS u USING (user_key) ' +
          'WHERE user_key NOT IN (SELECT user_key FROM {database}.identity_links) AND user_key IN (1, 2)',
      ),
    ).toEqual([
      'CREATE VIEW IF NOT EXISTS analytics.v ON CLUSTER c\nAS SELECT user_key\nFROM analytics.events AS e\nGLOBAL INNER JOIN analytics.sessions AS s USING (user_key)\n' +
        'GLOBAL ANY LEFT JOIN analytics.users_daily AS u USING (user_key)\nWHERE (user_key GLOBAL NOT IN (\n    SELECT user_key\n    FROM analytics.identity_links\n)) AND (user_key IN (1, 2))',
    ]);
  });
});
