/**
 * The commands that read or erase data, with two sites holding the same ids: `report` (and
 * `--people`) reads one site or shows every site by site, `audience` needs a site when there are
 * several, and `forget --site` erases the id in that site only: its ClickHouse rows and its
 * worker state (the visitor key of the pair), nothing of the other site. A bad --site is a
 * usage error (exit 2) before anything is read.
 */
import { runAudience } from '../../src/commands/audience-command';
import { runForget } from '../../src/commands/forget-command';
import { runReport } from '../../src/commands/report-command';
import { migrate } from '../../src/clickhouse/migrations';
import type { ReportRow } from '../../src/clickhouse/report-queries';
import { loadConfig, type Config } from '../../src/config';
import { UsageError } from '../../src/errors';
import { newKeyState } from '../../src/engine/engine';
import { visitorKeyOf } from '../../src/events/visitor-key';
import type { PeopleReportRow } from '../../src/people/people-report';
import { encodeState } from '../../src/state/codec';
import { PartitionKeys } from '../../src/state/keys';
import { createRedis, deleteRedisKeys, getClickHouse, getRedisUrl, newRedisPrefix, useTestDatabase } from '../support';
import { queryRows } from './clickhouse-fixtures';

jest.setTimeout(120_000);

const db = useTestDatabase('sites_cmd');
const TOPIC = 'events';
let config: Config;
let prefix: string;
const redis = createRedis();

/** A session row of a site, on 2024-05-02 unless said, with the columns the reports read. */
function session(site: string, id: string, userKey: string, userId = '', day = '2024-05-02', channel = 'web'): string {
  return `('${site}', '${id}', '${userKey}', '${userKey.startsWith('a-') ? userKey : ''}', '${userId}', '${day} 10:00:00', '${day} 10:05:00', 300000, 3, 2, '${channel}', 1, 0, 0, 1, 1)`;
}
const SESSION_COLUMNS = 'site, session_id, user_key, anonymous_id, user_id, started_at, ended_at, duration_ms, events, views, channel, is_engaged, is_bounce, is_open, sign, version';

function event(site: string, id: string, anonymous: string, userId: string): string {
  return `('${site}', '${id}', '${anonymous || userId}', '${anonymous}', '${userId}', '2024-05-02 10:01:00', 'login', '{}')`;
}

beforeAll(async () => {
  await migrate(db.client, { database: db.name });
  const { url, username, password } = await getClickHouse();
  prefix = newRedisPrefix('sites').slice(0, -1);
  config = loadConfig({
    CLICKHOUSE_URL: url,
    CLICKHOUSE_USER: username,
    CLICKHOUSE_PASSWORD: password,
    CLICKHOUSE_DATABASE: db.name,
    REDIS_URL: getRedisUrl(),
    REDIS_KEY_PREFIX: prefix,
    KAFKA_TOPICS: TOPIC,
    LOG_LEVEL: 'warn',
  });
  // The same ids in both sites: a device a-1 logged in as u-1, and u-1 alone (a store visit).
  await db.client.command({
    query:
      `INSERT INTO ${db.name}.sessions (${SESSION_COLUMNS}) VALUES ` +
      [
        session('default', 'd1', 'a-1', 'u-1'),
        session('default', 'd2', 'u-1', 'u-1', '2024-05-02', 'store'),
        session('default', 'd3', 'a-2'),
        session('shop', 's1', 'a-1', 'u-1'),
        session('shop', 's2', 'u-1', 'u-1', '2024-05-02', 'store'),
        session('shop', 's3', 'a-3', '', '2024-05-03'),
      ].join(', '),
  });
  await db.client.command({
    query: `INSERT INTO ${db.name}.events (site, event_id, user_key, anonymous_id, user_id, timestamp, type, raw) VALUES ${[event('default', 'e1', 'a-1', 'u-1'), event('shop', 'e2', 'a-1', 'u-1')].join(', ')}`,
  });
  // Worker state of u-1 and a-1 in both sites, under their visitor keys.
  const keys = new PartitionKeys(prefix, TOPIC, 0);
  await redis.hset(keys.meta, 'epoch', '1');
  for (const site of ['default', 'shop']) {
    for (const id of ['u-1', 'a-1']) await redis.set(keys.user(visitorKeyOf(site, id)), encodeState(newKeyState(visitorKeyOf(site, id))));
  }
});

afterAll(async () => {
  await deleteRedisKeys(redis, `{${prefix}:`);
  redis.disconnect();
});

function collect(): { write: (text: string) => void; text: () => string } {
  const out: string[] = [];
  return { write: (text) => void out.push(text), text: () => out.join('') };
}

describe('report', () => {
  it('shows every site side by side, with a site column, when the data holds several', async () => {
    const out = collect();
    const rows = (await runReport({ from: '2024-05-02', to: '2024-05-03', format: 'json' }, { config, write: out.write })) as ReportRow[];
    expect(rows.map((r) => [r.day, r.site, r.sessions, r.users])).toEqual([
      ['2024-05-02', 'default', 3, 3],
      ['2024-05-02', 'shop', 2, 2],
      ['2024-05-03', 'shop', 1, 1],
    ]);
    expect(JSON.parse(out.text())[0]).toMatchObject({ day: '2024-05-02', site: 'default', sessions: 3 });
    const table = collect();
    await runReport({ from: '2024-05-02', to: '2024-05-02', by: 'channel', format: 'table' }, { config, write: table.write });
    expect(table.text().split('\n')[0]).toMatch(/^day\s+site\s+channel\s+sessions/);
  });

  it('reads one site with --site, and the only site of the range without it, with no site column', async () => {
    const shop = (await runReport({ from: '2024-05-02', to: '2024-05-03', site: 'shop', format: 'json' }, { config, write: () => undefined })) as ReportRow[];
    expect(shop.map((r) => [r.day, r.site, r.sessions])).toEqual([
      ['2024-05-02', undefined, 2],
      ['2024-05-03', undefined, 1],
    ]);
    const only = collect();
    const rows = (await runReport({ from: '2024-05-03', to: '2024-05-03', format: 'csv' }, { config, write: only.write })) as ReportRow[];
    expect(rows.map((r) => [r.day, r.sessions])).toEqual([['2024-05-03', 1]]);
    expect(only.text().split('\n')[0]).toMatch(/^day,sessions,/);
    const none = (await runReport({ from: '2024-05-02', to: '2024-05-03', site: 'nowhere', format: 'json' }, { config, write: () => undefined })) as ReportRow[];
    expect(none).toEqual([]);
  });

  it('counts people per site: u-1 is one person in each site, never shared', async () => {
    const both = (await runReport({ from: '2024-05-02', to: '2024-05-02', people: true, format: 'json' }, { config, write: () => undefined })) as PeopleReportRow[];
    // default: u-1 (a-1's session claimed by the login, and the store visit) and a-2; shop: u-1.
    expect(both.map((r) => [r.site, r.people, r.sessions, r.crossDevicePeople])).toEqual([
      ['default', 2, 3, 1],
      ['shop', 1, 2, 1],
    ]);
    const shop = (await runReport({ from: '2024-05-02', to: '2024-05-02', people: true, site: 'shop', format: 'json' }, { config, write: () => undefined })) as PeopleReportRow[];
    expect(shop.map((r) => [r.site, r.people, r.sessions])).toEqual([[undefined, 1, 2]]);
  });

  it('refuses a bad site name before reading anything (exit 2)', async () => {
    for (const site of ['Shop', '', '-x', 'a b', 'x'.repeat(65)]) {
      await expect(runReport({ from: '2024-05-02', to: '2024-05-02', site, format: 'json' }, { config, write: () => undefined })).rejects.toThrow(UsageError);
    }
    await expect(runReport({ from: '2024-05-02', to: '2024-05-02', site: 'Shop', format: 'json' }, { config })).rejects.toThrow(/--site 'Shop' is not a site name/);
  });
});

describe('audience', () => {
  it('needs --site when the data holds several sites, and exports that site only', async () => {
    await expect(runAudience({ count: true }, { config, log: () => undefined })).rejects.toThrow(/several sites \(default, shop\); choose one with --site/);
    await expect(runAudience({ count: true, site: 'NO' }, { config, log: () => undefined })).rejects.toThrow(UsageError);
    const lines: string[] = [];
    const stdout = { write: (text: string) => (lines.push(text), true) } as unknown as NodeJS.WritableStream;
    await expect(runAudience({ site: 'shop' }, { config, stdout: stdout as never, log: () => undefined })).resolves.toEqual({ people: 2 });
    expect(lines.join('').trim().split('\n').map((l) => (JSON.parse(l) as { person_id: string }).person_id)).toEqual(['a-3', 'u-1']);
    await expect(runAudience({ site: 'default', count: true }, { config, stdout: stdout as never, log: () => undefined })).resolves.toEqual({ people: 2 });
  });
});

describe('forget --site', () => {
  it('needs a site when the data holds several, and refuses a bad one', async () => {
    await expect(runForget({ userId: 'u-1', dryRun: true }, { config, write: () => undefined })).rejects.toThrow(/several sites/);
    await expect(runForget({ userId: 'u-1', site: 'Bad!', dryRun: true }, { config, write: () => undefined })).rejects.toThrow(UsageError);
  });

  it('erases the user in that site (rows and worker state) and nothing of the same ids in another site', async () => {
    const count = async (table: string, site: string) =>
      Number((await queryRows<{ n: string }>(db.client, `SELECT count() AS n FROM ${db.name}.${table} WHERE site = {site:String} AND user_key IN ('u-1', 'a-1')`, { site }))[0]?.n);
    const keys = new PartitionKeys(prefix, TOPIC, 0);
    const dry = await runForget({ userId: 'u-1', site: 'shop', dryRun: true }, { config, write: () => undefined });
    expect(dry).toMatchObject({ site: 'shop', ids: ['a-1', 'u-1'], redisStates: 2, executed: false });
    expect(dry.rows).toMatchObject({ sessions: 2, events: 1, identity_links: 1 });

    const done = await runForget({ userId: 'u-1', site: 'shop', yes: true }, { config, write: () => undefined });
    expect(done).toMatchObject({ executed: true, redisStates: 2 });
    for (const table of ['sessions', 'events', 'users_daily']) {
      expect({ table, shop: await count(table, 'shop'), default: await count(table, 'default') }).toEqual({
        table,
        shop: 0,
        default: table === 'sessions' ? 2 : table === 'events' ? 1 : 2,
      });
    }
    const links = await queryRows<{ site: string }>(db.client, `SELECT site FROM ${db.name}.identity_map WHERE anonymous_id = 'a-1'`);
    expect(links.map((l) => l.site)).toEqual(['default']);
    expect(await redis.exists(keys.user(visitorKeyOf('shop', 'u-1')), keys.user(visitorKeyOf('shop', 'a-1')))).toBe(0);
    expect(await redis.exists(keys.user('u-1'), keys.user('a-1'))).toBe(2);
    // The other visitor of the site stays.
    expect(await count('sessions', 'shop')).toBe(0);
    const [left] = await queryRows<{ n: string }>(db.client, `SELECT count() AS n FROM ${db.name}.sessions WHERE site = 'shop'`);
    expect(Number(left?.n)).toBe(1);
  });
});
