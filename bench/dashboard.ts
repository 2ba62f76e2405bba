/**
 * `npm run bench:dashboard`: how fast the dashboard answers from the ClickHouse of CLICKHOUSE_URL.
 *
 * Makes a scratch database, migrates it and fills it with INSERT … SELECT FROM numbers() (fast):
 * 20 sites, one big one with BENCH_SESSIONS sessions (default 5,000,000) over the last 30 days
 * and 19 others with a twentieth of that each; one session in ten also has its superseded start
 * record and that record's cancel row (sign -1), as the worker leaves them until parts merge.
 * The big site's events (one per session, 2 % key events) fill `events` for the current-visitors
 * query and conversions.
 *
 * Then it times, BENCH_RUNS times (default 7), through the same code the server runs:
 *   - a full site page, as the server builds it (loadSiteView): top cards and the previous
 *     period, the daily chart and each panel's open tab, concurrently, over the last 30 days
 *     (current visitors come in a request of their own, timed apart);
 *   - one Stats API aggregate (all metrics, 30 days);
 *   - current visitors;
 * and, as the baseline measured in the same run, `SELECT count()` of the big site's sessions in
 * range (the least any answer can cost: reading the site's part of one column). Prints p50, p95
 * and the ratio to the baseline, and the load average. BENCH_KEEP=1 keeps the database.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { loadavg } from 'node:os';
import { migrate } from '../src/clickhouse/migrations';
import type { SiteConfig } from '../src/dashboard/config';
import { CARD_METRIC_NAMES, DEFAULT_METRIC, PANELS as PAGE_PANELS } from '../src/dashboard/pages/catalog';
import { localNow, rangeOf } from '../src/dashboard/pages/date-range';
import { loadSiteView, tabData } from '../src/dashboard/pages/site-view';
import type { StatsQuery } from '../src/dashboard/pages/stats-source';
import { parseViewState } from '../src/dashboard/pages/view-state';
import { currentVisitors } from '../src/dashboard/stats/current-visitors';
import { parseStatsQuery, runStatsQuery, type StatsDeps } from '../src/dashboard/stats/query';

const URL = process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const BIG = Number(process.env.BENCH_SESSIONS ?? 5_000_000);
const SITES = 20;
const DAYS = 30;
const BIG_SITE = 'big-shop';

const CARDS = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'engaged_rate', 'visit_duration', 'conversions'];

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function main(): Promise<void> {
  const client = createClient({ url: URL, username: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '', request_timeout: 1_200_000, log: { level: ClickHouseLogLevel.OFF } });
  // BENCH_DATABASE=<name>: time again on a database an earlier BENCH_KEEP=1 run filled.
  const reuse = process.env.BENCH_DATABASE;
  const database = reuse ?? `bench_dashboard_${Date.now().toString(36)}`;
  try {
    console.log(`load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const now = reuse ? await newestStart(client, database) : Date.now();
    if (!reuse) {
      await migrate(client, { database, cluster: '' });
      await siteFirst(client, database);
      const filled = performance.now();
      await fill(client, database, now);
      console.log(`filled in ${((performance.now() - filled) / 1000).toFixed(0)} s`);
    }
    const sites: SiteConfig[] = [{ id: BIG_SITE, timezone: 'Europe/Berlin', name: 'Big' }];
    const deps: StatsDeps = { clickhouse: client, database, sites, now: () => now };
    const range = '30d';
    const q = (body: object) => runStatsQuery(deps, parseStatsQuery({ site_id: BIG_SITE, date_range: range, ...body }));
    // The site page as the server builds it (every query of its default view, concurrently).
    const pageInput = () => {
      const view = { site: BIG_SITE, timeZone: 'Europe/Berlin', state: parseViewState('period=30d', CARD_METRIC_NAMES, DEFAULT_METRIC), now: new Date(now), stats: (query: StatsQuery) => runStatsQuery(deps, parseStatsQuery(query)) };
      return { view, range: rangeOf(view.state, localNow(view.now, view.timeZone).day) };
    };
    const page = () => loadSiteView(pageInput().view);
    const aggregate = () => q({ metrics: ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration', 'events', 'conversion_rate', 'engaged_rate'] });
    const baseline = async () => {
      await client.command({
        query: `SELECT count() FROM ${database}.sessions WHERE site = '${BIG_SITE}' AND started_at >= now64(3) - INTERVAL ${DAYS} DAY FORMAT Null`,
      });
    };
    const inRange = await runStatsQuery(deps, parseStatsQuery({ site_id: BIG_SITE, date_range: range, metrics: ['visits', 'visitors'] }));
    console.log(`big site: ${inRange.results[0]?.metrics[0]?.toLocaleString('en')} sessions, ${inRange.results[0]?.metrics[1]?.toLocaleString('en')} visitors in range`);

    if (process.env.BENCH_EACH) {
      // Each query of the page alone, once, and every tab of every panel: where the time goes.
      const each = async (label: string, fn: () => Promise<unknown>) => {
        const started = performance.now();
        await fn();
        console.log(`  ${label.padEnd(28)} ${(performance.now() - started).toFixed(0).padStart(6)} ms`);
      };
      await each('(cards)', () => q({ metrics: CARDS }));
      await each('(series)', () => q({ metrics: ['visitors', 'visits'], dimensions: ['time:day'] }));
      const input = pageInput();
      const days = input.range;
      for (const panel of PAGE_PANELS) for (const tab of panel.tabs) await each(`${panel.id}/${tab.id}`, () => tabData(input.view, days, tab));
    }
    const timings: Record<string, number[]> = { baseline: [], page: [], aggregate: [], current: [] };
    const time = async (name: string, fn: () => Promise<unknown>) => {
      const started = performance.now();
      await fn();
      (timings[name] as number[]).push(performance.now() - started);
    };
    // One warm-up round (first reads of each column from disk), then the timed ones.
    await Promise.all([baseline(), page(), aggregate()]);
    for (let i = 0; i < RUNS; i++) {
      await time('baseline', baseline);
      await time('page', page);
      await time('aggregate', aggregate);
      await time('current', () => currentVisitors(deps, BIG_SITE));
    }
    const base = percentile(timings.baseline as number[], 50);
    console.log(`\n${RUNS} runs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}:`);
    const line = (label: string, name: string, target: number) => {
      const values = timings[name] as number[];
      const p50 = percentile(values, 50);
      const p95 = percentile(values, 95);
      console.log(`  ${label.padEnd(52)} p50 ${p50.toFixed(0).padStart(5)} ms  p95 ${p95.toFixed(0).padStart(5)} ms  ${(p50 / base).toFixed(1).padStart(5)}× baseline  target p95 ≤ ${target} ms ${p95 <= target ? 'met' : 'NOT met'}`);
    };
    console.log(`  ${'baseline: SELECT count() of the site in range'.padEnd(52)} p50 ${base.toFixed(0).padStart(5)} ms`);
    line(`full page (${3 + PAGE_PANELS.length} queries, concurrent)`, 'page', 1000);
    line('Stats API aggregate, 9 metrics', 'aggregate', 300);
    line('current visitors', 'current', 50);
  } finally {
    if (process.env.BENCH_KEEP) console.log(`kept database ${database}`);
    else if (!reuse) await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client.close();
  }
}

/** "Now" of a filled database: a second after its newest session start (as when it was filled). */
async function newestStart(client: ClickHouseClient, database: string): Promise<number> {
  const result = await client.query({ query: `SELECT toUnixTimestamp64Milli(max(started_at)) AS ms FROM ${database}.sessions WHERE site = '${BIG_SITE}'`, format: 'JSONEachRow' });
  const [row] = await result.json<{ ms: string | number }>();
  return Number(row?.ms) + 1000;
}

/**
 * `site` leads the sorting keys of `sessions` and `events` once the sites migration is applied.
 * On a schema from before it, rebuild both tables that way (empty, so it is quick), as the
 * migration does, so the bench measures what production will run. The roll-up views are
 * dropped: the dashboard does not read them, and they would slow the fill.
 */
async function siteFirst(client: ClickHouseClient, database: string): Promise<void> {
  for (const view of ['sessions_daily_mv', 'users_daily_mv', 'identity_links_mv', 'persons', 'person_sessions', 'session_persons']) {
    await client.command({ query: `DROP VIEW IF EXISTS ${database}.${view}` });
  }
  for (const table of ['sessions', 'events']) {
    const result = await client.query({ query: `SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {t:String}`, query_params: { db: database, t: table }, format: 'JSONEachRow' });
    const [row] = await result.json<{ sorting_key: string }>();
    if (row?.sorting_key.startsWith('site')) continue;
    const show = await client.query({ query: `SHOW CREATE TABLE ${database}.${table}`, format: 'TabSeparatedRaw' });
    const ddl = (await show.text()).trim();
    const rebuilt = ddl
      .replace(`CREATE TABLE ${database}.${table}`, `CREATE TABLE ${database}.${table}_site_first`)
      .replace(/\(\n/, "(\n    `site` LowCardinality(String) DEFAULT 'default',\n")
      .replace(/ORDER BY \(/, 'ORDER BY (site, ');
    await client.command({ query: rebuilt });
    await client.command({ query: `DROP TABLE ${database}.${table}` });
    await client.command({ query: `RENAME TABLE ${database}.${table}_site_first TO ${database}.${table}` });
  }
}

/** Sessions of one site: `count` over the last DAYS days before `now`. */
function sessionsSql(database: string, site: string, count: number, now: number, kind: 'final' | 'start' | 'cancel'): string {
  const span = DAYS * 86_400;
  const users = Math.max(1, Math.round(count / 2.5));
  const sign = kind === 'cancel' ? -1 : 1;
  const version = kind === 'final' ? 2 : 1;
  const where = kind === 'final' ? '' : 'WHERE number % 10 = 0';
  const pick = (list: string[], expr: string) => `[${list.map((v) => `'${v}'`).join(',')}][(${expr}) % ${list.length} + 1]`;
  return `INSERT INTO ${database}.sessions
SELECT
  '${site}' AS site,
  lower(hex(cityHash64('${site}', number))) AS session_id,
  concat('u', toString(cityHash64(number * 7919) % ${users})) AS user_key,
  user_key AS anonymous_id,
  '' AS user_id,
  fromUnixTimestamp64Milli(toInt64(${now} - ${span * 1000} + (number * ${span} / ${count}) * 1000)) AS started_at,
  started_at + toIntervalMillisecond(duration_ms) AS ended_at,
  ${kind === 'start' ? '0' : '(cityHash64(number, 1) % 600000)'} AS duration_ms,
  ${kind === 'start' ? '1' : '1 + number % 7'} AS events,
  ${kind === 'start' ? '1' : '1 + number % 4'} AS views,
  concat('/p/', toString(cityHash64(number, 2) % 3000)) AS entry_page,
  concat('/p/', toString(cityHash64(number, 3) % 3000)) AS exit_page,
  ${pick(['(direct)', 'google.com', 'bing.com', 'facebook.com', 'newsletter', 'twitter.com', 'partner.example', 'duckduckgo.com', 'news.ycombinator.com', 'google'], 'cityHash64(number, 4)')} AS source,
  ${pick(['(none)', 'referral', 'referral', 'referral', 'email', 'referral', 'referral', 'referral', 'referral', 'cpc'], 'cityHash64(number, 4)')} AS medium,
  ${pick(['', '', '', 'spring', 'black-friday', 'launch'], 'cityHash64(number, 5)')} AS campaign,
  '' AS term,
  '' AS content,
  ${pick(['web', 'web', 'web', 'app', 'server', 'store'], 'number')} AS channel,
  ${pick(['desktop', 'mobile', 'tablet'], 'cityHash64(number, 6)')} AS device_type,
  ${pick(['Windows', 'macOS', 'Linux', 'iOS', 'Android', 'ChromeOS'], 'cityHash64(number, 7)')} AS os,
  ${pick(['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet', 'Opera'], 'cityHash64(number, 8)')} AS browser,
  '' AS app_version,
  ${pick(['DE', 'US', 'FR', 'GB', 'EE', 'NL', 'IN', 'BR', 'JP', 'PL', 'ES', 'IT'], 'cityHash64(number, 9)')} AS country,
  concat('Region ', toString(cityHash64(number, 10) % 60)) AS region,
  concat('City ', toString(cityHash64(number, 11) % 800)) AS city,
  toUInt8(duration_ms >= 10000 OR views >= 2) AS is_engaged,
  1 - is_engaged AS is_bounce,
  1 AS session_number,
  '' AS previous_session_id,
  ${kind === 'final' ? 0 : 1} AS is_open,
  ${sign} AS sign,
  ${version} AS version
FROM numbers(${count})
${where}`;
}

async function fill(client: ClickHouseClient, database: string, now: number): Promise<void> {
  const small = Math.round(BIG / 20);
  const sites: [string, number][] = [[BIG_SITE, BIG], ...Array.from({ length: SITES - 1 }, (_, i) => [`site-${i + 1}`, small] as [string, number])];
  for (const [site, count] of sites) {
    for (const kind of ['start', 'cancel', 'final'] as const) await client.command({ query: sessionsSql(database, site, count, now, kind) });
  }
  const span = DAYS * 86_400;
  // One event per session of the big site, 2 % of them key events, the newest a second old.
  await client.command({
    query: `INSERT INTO ${database}.events (site, event_id, user_key, anonymous_id, user_id, timestamp, type, channel, key_event, raw)
SELECT '${BIG_SITE}', toString(number), concat('u', toString(cityHash64(number * 7919) % ${Math.round(BIG / 2.5)})), '', '',
  fromUnixTimestamp64Milli(toInt64(${now} - ${span * 1000} + (number * ${span} / ${BIG}) * 1000 + 1000)), 'page_view', 'web', toUInt8(number % 50 = 0), ''
FROM numbers(${BIG})`,
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
