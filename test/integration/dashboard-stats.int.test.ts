/**
 * Every Stats API figure equals the sessions standing (what `sessions FINAL WHERE sign = 1`
 * holds) for the same site, range and filters — on three sites in three time zones whose user
 * keys collide, written as the worker writes (retractions, merges, id changes), before and after
 * ClickHouse merges the parts; and equals `sessionizer report` for a UTC site.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { sessionReport } from '../../src/clickhouse/report-queries';
import type { SiteConfig } from '../../src/dashboard/config';
import { parseStatsQuery, runStatsQuery, type StatsDeps } from '../../src/dashboard/stats/query';
import type { SessionRow } from '../../src/engine/session-row';
import { useTestDatabase } from '../support';
import { optimizeAll, queryRows, testClient } from './clickhouse-fixtures';
import { ALL_METRICS, dayOf, ensureSiteColumns, expectMetrics, metricsOf, totalsBy, writeSite, type SiteData } from './dashboard-fixtures';
import { CHANNEL_SQL } from '../../src/dashboard/stats/definitions';

const db = useTestDatabase('dash_stats');
let client: ClickHouseClient;
const data = new Map<string, SiteData>();

const START = Date.parse('2024-05-01T18:00:00.000Z');
const SPAN = 40 * 3_600_000;
const SITES: SiteConfig[] = [
  { id: 'alpha', timezone: 'UTC', name: 'Alpha' },
  { id: 'beta', timezone: 'America/New_York', name: 'Beta' },
  { id: 'gamma.shop', timezone: 'Asia/Kolkata', name: 'Gamma' },
];
// "Today" for the relative ranges: the traffic's last day.
const NOW = Date.parse('2024-05-03T12:00:00.000Z');

function deps(): StatsDeps {
  return { clickhouse: client, database: db.name, sites: SITES, now: () => NOW };
}

async function ask(body: object) {
  return runStatsQuery(deps(), parseStatsQuery(body));
}

function site(id: string): SiteData {
  return data.get(id) as SiteData;
}

function inRange(rows: readonly SessionRow[], timezone: string, from: string, to: string): SessionRow[] {
  return rows.filter((r) => dayOf(r, timezone) >= from && dayOf(r, timezone) <= to);
}

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  await ensureSiteColumns(client, db.name);
  for (const [i, s] of SITES.entries()) {
    data.set(s.id, await writeSite(client, db.name, { id: s.id, timezone: s.timezone, seed: 101 + i, users: 40 + 10 * i, startMs: START, spanMs: SPAN }));
  }
  for (const s of data.values()) expect(s.current.length).toBeGreaterThan(50);
  // The generated traffic has key events: conversions are not all zero.
  expect([...site('alpha').keyEvents.values()].flat().length).toBeGreaterThan(0);
}, 180_000);

afterAll(async () => {
  await client.close();
});

const checks = () => {
  it.each(SITES.map((s) => s.id))('aggregate of every metric over a custom range equals the standing sessions (%s)', async (id) => {
    const s = site(id);
    const answer = await ask({ site_id: id, metrics: ALL_METRICS, date_range: ['2024-05-01', '2024-05-02'] });
    const expected = totalsBy(inRange(s.current, s.timezone, '2024-05-01', '2024-05-02'), s.keyEvents, () => '').get('') ;
    expect(expected).toBeDefined();
    expect(answer.results).toHaveLength(1);
    expectMetrics(answer.results[0]?.metrics as number[], metricsOf(expected as NonNullable<typeof expected>));
    expect(answer.query.date_range).toEqual(['2024-05-01', '2024-05-02']);
  });

  it.each(SITES.map((s) => s.id))('time:day series counts each session on the day it started in the site’s zone (%s)', async (id) => {
    const s = site(id);
    const answer = await ask({ site_id: id, metrics: ALL_METRICS, date_range: ['2024-04-30', '2024-05-05'], dimensions: ['time:day'], include: { time_labels: true } });
    const expected = totalsBy(inRange(s.current, s.timezone, '2024-04-30', '2024-05-05'), s.keyEvents, (r) => dayOf(r, s.timezone));
    expect(answer.results.map((r) => r.dimensions[0])).toEqual([...expected.keys()].sort());
    for (const row of answer.results) expectMetrics(row.metrics, metricsOf(expected.get(row.dimensions[0] as string) as never));
    expect(answer.meta.time_labels).toEqual(['2024-04-30', '2024-05-01', '2024-05-02', '2024-05-03', '2024-05-04', '2024-05-05']);
  });

  it('breakdowns with combined filters equal the standing sessions filtered alike', async () => {
    const s = site('beta');
    const body = {
      site_id: 'beta',
      metrics: ['visitors', 'visits', 'bounce_rate', 'pageviews'],
      date_range: ['2024-05-01', '2024-05-03'],
      dimensions: ['visit:device', 'visit:entry_point'],
      filters: [
        ['is_not', 'visit:country', ['']],
        ['or', [['contains', 'visit:entry_page', ['DOCS'], { case_sensitive: false }], ['not', ['is', 'visit:source', ['(direct)']]]]],
      ],
    };
    const answer = await ask(body);
    const rows = inRange(s.current, s.timezone, '2024-05-01', '2024-05-03').filter(
      (r) => r.country !== '' && (r.entry_page.toLowerCase().includes('docs') || r.source !== '(direct)'),
    );
    const expected = totalsBy(rows, s.keyEvents, (r) => `${r.device_type}|${r.channel}`);
    expect(answer.results.length).toBe(expected.size);
    for (const row of answer.results) {
      expectMetrics(row.metrics, metricsOf(expected.get(row.dimensions.join('|')) as never), body.metrics);
    }
    // Default order: the first metric, largest first.
    const visitors = answer.results.map((r) => r.metrics[0] as number);
    expect(visitors).toEqual([...visitors].sort((a, b) => b - a));
  });

  it('visitors are distinct per site: the same user key on two sites counts on each', async () => {
    const answers = await Promise.all(SITES.map((s) => ask({ site_id: s.id, metrics: ['visitors'], date_range: ['2024-04-01', '2024-05-31'] })));
    for (const [i, s] of SITES.entries()) {
      expect(answers[i]?.results[0]?.metrics[0]).toBe(new Set(site(s.id).current.map((r) => r.user_key)).size);
    }
    const shared = [...new Set(site('alpha').current.map((r) => r.user_key))].filter((k) => site('beta').current.some((r) => r.user_key === k));
    expect(shared.length).toBeGreaterThan(0);
  });

  it('the documented SQL (sessions FINAL WHERE sign = 1) gives the API’s figures per source', async () => {
    const s = site('gamma.shop');
    const answer = await ask({ site_id: 'gamma.shop', metrics: ['visitors', 'visits', 'pageviews', 'events'], date_range: ['2024-05-02', '2024-05-02'], dimensions: ['visit:source'] });
    const sql = await queryRows<{ source: string; visitors: string; visits: string; views: string; events: string }>(
      client,
      `SELECT source, uniqExact(user_key) AS visitors, count() AS visits, sum(views) AS views, sum(events) AS events
       FROM ${db.name}.sessions FINAL
       WHERE sign = 1 AND site = {site:String} AND toDate(started_at, {tz:String}) = {day:Date}
       GROUP BY source`,
      { site: s.id, tz: s.timezone, day: '2024-05-02' },
    );
    const bySource = new Map(sql.map((r) => [r.source, [Number(r.visitors), Number(r.visits), Number(r.views), Number(r.events)]]));
    expect(new Map(answer.results.map((r) => [r.dimensions[0], r.metrics]))).toEqual(bySource);
  });

  it('visit:channel groups sources as the documented rules say', async () => {
    const answer = await ask({ site_id: 'alpha', metrics: ['visits'], date_range: ['2024-04-30', '2024-05-05'], dimensions: ['visit:channel', 'visit:source', 'visit:medium'] });
    const channels = new Set(answer.results.map((r) => r.dimensions[0]));
    expect(channels.has('Direct')).toBe(true);
    for (const row of answer.results) {
      const [channel, source, medium] = row.dimensions;
      if (source === '(direct)') expect(channel).toBe('Direct');
      if (medium === 'referral' && /(^|\.)google\./.test(source as string)) expect(channel).toBe('Organic Search');
      if (medium === 'email') expect(channel).toBe('Email');
      if (medium === 'cpc' && /google/.test(source as string)) expect(channel).toBe('Paid Search');
    }
    expect(CHANNEL_SQL).toContain('Organic Social');
    // As a filter too.
    const s = site('alpha');
    const direct = await ask({ site_id: 'alpha', metrics: ['visits'], date_range: ['2024-04-30', '2024-05-05'], filters: [['is', 'visit:channel', ['Direct']]] });
    const expected = inRange(s.current, s.timezone, '2024-04-30', '2024-05-05').filter((r) => r.source === '(direct)' || (r.source === '' && ['', '(none)'].includes(r.medium)));
    expect(direct.results[0]?.metrics[0]).toBe(expected.length);
    expect(expected.length).toBeGreaterThan(0);
  });

  it('time:hour of one day in the site’s zone, and pagination with total_rows', async () => {
    const s = site('beta');
    const answer = await ask({ site_id: 'beta', metrics: ['visits'], date_range: ['2024-05-02', '2024-05-02'], dimensions: ['time:hour'], include: { total_rows: true }, pagination: { limit: 5, offset: 2 } });
    const hours = new Map<string, number>();
    for (const r of inRange(s.current, s.timezone, '2024-05-02', '2024-05-02')) {
      const local = new Intl.DateTimeFormat('sv-SE', { timeZone: s.timezone, hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit' }).format(Date.parse(r.started_at));
      const label = `${local.slice(0, 13)}:00:00`;
      hours.set(label, (hours.get(label) ?? 0) + 1);
    }
    const all = [...hours.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(answer.meta.total_rows).toBe(all.length);
    expect(answer.results.map((r) => [r.dimensions[0], r.metrics[0]])).toEqual(all.slice(2, 7));
  });

  it('relative ranges count days in the site’s zone up to today', async () => {
    const answer = await ask({ site_id: 'gamma.shop', metrics: ['visits'], date_range: '7d' });
    expect(answer.query.date_range).toEqual(['2024-04-27', '2024-05-03']);
    const s = site('gamma.shop');
    expect(answer.results[0]?.metrics[0]).toBe(inRange(s.current, s.timezone, '2024-04-27', '2024-05-03').length);
    const all = await ask({ site_id: 'gamma.shop', metrics: ['visits'], date_range: 'all' });
    expect(all.query.date_range[0]).toBe(s.current.map((r) => dayOf(r, s.timezone)).sort()[0]);
  });
};

describe('as written by the worker', checks);

describe('after ClickHouse merged every part', () => {
  beforeAll(async () => {
    await optimizeAll(client, db.name);
  }, 120_000);
  checks();
});

describe('equals sessionizer report for a UTC site', () => {
  const alone = useTestDatabase('dash_report');
  let aloneClient: ClickHouseClient;
  let aloneData: SiteData;
  beforeAll(async () => {
    aloneClient = await testClient(alone.name);
    await migrate(aloneClient, { database: alone.name });
    await ensureSiteColumns(aloneClient, alone.name);
    aloneData = await writeSite(aloneClient, alone.name, { id: 'solo', timezone: 'UTC', seed: 7, users: 50, startMs: START, spanMs: SPAN });
  }, 120_000);
  afterAll(async () => {
    await aloneClient.close();
  });

  it('per day: visitors, visits, pageviews, bounce rate, engaged rate and duration', async () => {
    const report = await sessionReport(aloneClient, alone.name, { from: '2024-04-30', to: '2024-05-05' });
    const answer = await runStatsQuery(
      { clickhouse: aloneClient, database: alone.name, sites: [{ id: 'solo', timezone: 'UTC', name: 'solo' }], now: () => NOW },
      parseStatsQuery({ site_id: 'solo', metrics: ['visitors', 'visits', 'pageviews', 'bounce_rate', 'engaged_rate', 'visit_duration', 'views_per_visit'], date_range: ['2024-04-30', '2024-05-05'], dimensions: ['time:day'] }),
    );
    expect(report.length).toBeGreaterThan(1);
    expect(answer.results.map((r) => r.dimensions[0])).toEqual(report.map((r) => r.day));
    for (const [i, row] of report.entries()) {
      const metrics = answer.results[i]?.metrics as number[];
      expectMetrics(metrics, {
        visitors: row.users,
        visits: row.sessions,
        pageviews: row.views,
        bounce_rate: 100 * row.bounceRate,
        engaged_rate: 100 * row.engagedRate,
        visit_duration: row.avgDurationMs / 1000,
        views_per_visit: row.viewsPerSession,
      }, ['visitors', 'visits', 'pageviews', 'bounce_rate', 'engaged_rate', 'visit_duration', 'views_per_visit']);
    }
    expect(aloneData.current.length).toBeGreaterThan(0);
  });
});
