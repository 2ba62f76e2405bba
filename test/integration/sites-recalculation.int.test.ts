/**
 * One site's data recalculated without touching another's, against real Redis and ClickHouse:
 * `produce --backfill --site S` loads a file as site S (lines of another site skipped) and
 * recalculates S only; `recompute --since D --sink clickhouse --site S` recalculates S only, and
 * without `--site` every site, each within itself. Two sites hold the same ids throughout.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { toEventRow } from '../../src/clickhouse/event-row';
import { ClickHouseSink } from '../../src/clickhouse/session-sink';
import { runBackfill } from '../../src/commands/backfill-command';
import { runRecalculation } from '../../src/commands/recompute-command';
import { loadConfig, type Config } from '../../src/config';
import { parseEvent } from '../../src/events/parse-event';
import type { RawEvent } from '../../src/loadgen/traffic';
import { createClickHouseClient, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import { currentSessions, recomputeRecords, withoutOpenFlag, workerEnv } from '../support/worker-harness';

jest.setTimeout(180_000);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const start = Date.parse('2024-05-01T08:00:00Z');

function ev(id: string, key: string, at: number, site?: string): RawEvent {
  return { event_id: id, type: 'page_view', timestamp: new Date(at).toISOString(), anonymous_id: key, page: { path: `/${id}` }, ...(site ? { site } : {}) };
}

/** Two sessions per user: three events, then one after a 2 h pause (the same ids in every site). */
function history(users: number, site?: string): RawEvent[] {
  const events: RawEvent[] = [];
  for (let u = 0; u < users; u++) {
    const key = `u${u}`;
    const at = start + u * MINUTE;
    events.push(ev(`${key}-1`, key, at, site), ev(`${key}-2`, key, at + 5 * MINUTE, site), ev(`${key}-3`, key, at + 12 * MINUTE, site), ev(`${key}-4`, key, at + 2 * HOUR, site));
  }
  return events;
}

const withSite = (events: readonly RawEvent[], site: string) => events.map((e) => ({ ...e, site }));

let admin: ClickHouseClient;
let config: Config;
let database = '';
let work = '';
const redisPrefix = newRedisPrefix('sites_recalc');

beforeAll(async () => {
  admin = await createClickHouseClient();
  work = mkdtempSync(join(tmpdir(), 'sites-recalc-test-'));
  database = uniqueName('sites_recalc');
  await migrate(admin, { database, cluster: '' });
  config = loadConfig(await workerEnv({ topic: uniqueName('sites_recalc'), groupId: uniqueName('sites_recalc_group'), redisPrefix, database }));
});
afterAll(async () => {
  await admin.close();
  const redis = createRedis();
  await deleteRedisKeys(redis, `{${redisPrefix}`);
  await redis.quit();
  rmSync(work, { recursive: true, force: true });
});

async function sessionsOf(site: string) {
  return withoutOpenFlag(await currentSessions(admin, database)).filter((s) => s.site === site);
}

/** Every stored row of a site (cancelled ones too): what a run that touched nothing leaves as it was. */
async function storedRows(site: string): Promise<string[]> {
  const result = await admin.query({
    query: `SELECT session_id, version, sign FROM ${database}.sessions WHERE site = {site:String} ORDER BY session_id, version, sign`,
    query_params: { site },
    format: 'JSONEachRow',
  });
  return ((await result.json()) as Array<Record<string, unknown>>).map((r) => JSON.stringify(r));
}

async function insertLate(events: readonly RawEvent[]): Promise<void> {
  const rows = events.map((e) => {
    const raw = JSON.stringify(e);
    const parsed = parseEvent(raw);
    if (!parsed.ok) throw parsed.error;
    return toEventRow(parsed.valid, raw);
  });
  await new ClickHouseSink(admin, database).insertEvents(rows, `late-${rows.length}-${String(events[0]?.site)}`);
}

it('backfill and recalculation of one site leave every other site as it was', async () => {
  const shop = history(6);
  const blog = history(4, 'blog');

  // A file for the site shop: its events name no site; one line names another and is skipped.
  const shopFile = join(work, 'shop.ndjson');
  writeFileSync(shopFile, [...shop, ev('x-1', 'u0', start, 'blog')].map((e) => JSON.stringify(e)).join('\n') + '\n');
  const reports: string[] = [];
  const shopStats = await runBackfill({ input: shopFile, site: 'shop' }, { config, log: (text) => void reports.push(text) });
  expect(shopStats).toMatchObject({ events: shop.length, invalid: 1, users: 6 });
  expect(reports.join('')).toContain(`line ${shop.length + 1}: skipped, site: the event is of site blog, not of --site shop`);
  const expectedShop = await recomputeRecords(withSite(shop, 'shop'));
  expect(await sessionsOf('shop')).toEqual(expectedShop);
  expect(await sessionsOf('blog')).toEqual([]);

  // The site blog, with the same ids: its own sessions (ids differ), shop's rows untouched.
  const shopRows = await storedRows('shop');
  const blogFile = join(work, 'blog.ndjson');
  writeFileSync(blogFile, blog.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await runBackfill({ input: blogFile, site: 'blog' }, { config, log: () => undefined });
  const expectedBlog = await recomputeRecords(blog);
  expect(await sessionsOf('blog')).toEqual(expectedBlog);
  expect(await storedRows('shop')).toEqual(shopRows);
  expect(expectedBlog.every((b) => !expectedShop.some((s) => s.session_id === b.session_id))).toBe(true);

  // Late events bridging each user's two sessions, in both sites, written straight to events.
  const bridge = (site: string, users: number) =>
    Array.from({ length: users }, (_, u) => [40, 65, 90, 115].map((m, i) => ev(`u${u}-b${i}`, `u${u}`, start + u * MINUTE + m * MINUTE, site))).flat();
  await insertLate([...bridge('shop', 6), ...bridge('blog', 4)]);

  // --site blog: blog merges, shop stays as it was.
  const blogStats = await runRecalculation(config, { sinceMs: start, site: 'blog' });
  expect(blogStats).toMatchObject({ totalUsers: 4, unsettled: [] });
  const mergedBlog = await recomputeRecords([...blog, ...bridge('blog', 4)]);
  expect(mergedBlog.length).toBe(4); // one session per user now
  expect(await sessionsOf('blog')).toEqual(mergedBlog);
  expect(await storedRows('shop')).toEqual(shopRows);

  // Without --site: every site, each within itself (blog has nothing left to change).
  const blogRows = await storedRows('blog');
  const allStats = await runRecalculation(config, { sinceMs: start });
  expect(allStats.totalUsers).toBe(10);
  expect(await sessionsOf('shop')).toEqual(await recomputeRecords(withSite([...shop, ...bridge('shop', 6)], 'shop')));
  expect(await storedRows('blog')).toEqual(blogRows);
});
