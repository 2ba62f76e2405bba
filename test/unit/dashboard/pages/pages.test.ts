/**
 * The pages' routes on a Fastify app, over an in-memory Stats API: what a viewer sees, what a
 * click links to, what the exports hold, and that nothing from the data becomes markup.
 */
import Fastify from 'fastify';
import { unzipSync, strFromU8 } from 'fflate';
import { registerPagesWith, type Viewer } from '../../../../src/dashboard/pages';
import { toCsv } from '../../../../src/dashboard/pages/export';
import { CARD_METRIC_NAMES, DEFAULT_METRIC } from '../../../../src/dashboard/pages/catalog';
import { parseViewState } from '../../../../src/dashboard/pages/view-state';
import type { StatsQuery } from '../../../../src/dashboard/pages/stats-source';
import { memoryStats, type MemorySession } from './memory-stats';

const NOW = new Date('2026-03-10T14:20:00Z'); // 15:20 in Berlin
const EVIL = '<img src=x onerror=alert(1)>';

const sessions: MemorySession[] = [
  { site: 'shop', user: 'u1', start: '2026-03-10 09:05', durationS: 120, views: 3, engaged: true, keyEvent: 'Signed Up', person: 'ann', dims: { 'visit:source': 'Google', 'visit:country': 'DE', 'visit:device': 'desktop' } },
  { site: 'shop', user: 'u1', start: '2026-03-09 10:00', durationS: 0, views: 1, bounce: true, returning: true, person: 'ann', dims: { 'visit:source': 'Google', 'visit:country': 'DE', 'visit:device': 'mobile' } },
  { site: 'shop', user: 'u2', start: '2026-03-08 18:30', durationS: 60, views: 2, engaged: true, person: 'bob', dims: { 'visit:source': EVIL, 'visit:country': 'FR', 'visit:device': 'mobile' } },
  { site: 'shop', user: 'u3', start: '2026-03-01 12:00', durationS: 30, views: 1, bounce: true, dims: { 'visit:source': 'Bing' } },
  { site: 'blog', user: 'b1', start: '2026-03-10 13:00', durationS: 10, views: 1, bounce: true },
];

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  bytes: Uint8Array;
  json(): unknown;
}

/** The app, listening on a free local port (Fastify's inject needs a module Jest cannot load here). */
interface TestApp {
  inject(request: string | { url: string; headers: Record<string, string> }): Promise<Answer>;
}

const apps: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function appFor(viewer: Viewer | null, log: StatsQuery[] = []): Promise<TestApp> {
  const app = Fastify();
  app.decorateRequest('viewer', null);
  app.addHook('onRequest', async (request) => {
    (request as unknown as { viewer: Viewer | null }).viewer = viewer;
  });
  registerPagesWith(app, {
    stats: memoryStats(sessions, log),
    timeZoneOf: () => 'Europe/Berlin',
    currentVisitors: async (site) => (site === 'shop' ? 2 : 0),
    now: () => NOW,
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return {
    async inject(request) {
      const { url, headers } = typeof request === 'string' ? { url: request, headers: {} } : request;
      const res = await fetch(`${base}${url}`, { headers, redirect: 'manual' });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const body = Buffer.from(bytes).toString('utf8');
      return { statusCode: res.status, headers: Object.fromEntries(res.headers), body, bytes, json: () => JSON.parse(body) };
    },
  };
}

const alice: Viewer = { kind: 'account', email: 'alice@example.com', sites: ['shop', 'blog'], readOnly: false };

function cardValues(body: string): Record<string, string> {
  return Object.fromEntries([...body.matchAll(/data-metric="([a-z_]+)" data-value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

describe('dashboard pages', () => {
  it('lists the sites with their sessions of the last 24 hours', async () => {
    const app = await appFor(alice);
    const res = await app.inject('/');
    expect(res.statusCode).toBe(200);
    // shop: 09:05 today and (not in the last 24 h) 10:00 yesterday is 29 h ago → 1; blog: 1.
    expect([...res.body.matchAll(/data-site="([^"]+)" data-sessions="(\d+)"/g)].map((m) => [m[1], m[2]])).toEqual([['shop', '1'], ['blog', '1']]);
    expect(res.body).toContain('<svg class="spark"');
  });

  it("shows a site's cards for the period in the site's zone, with the filters of the URL", async () => {
    const log: StatsQuery[] = [];
    const app = await appFor(alice, log);
    const res = await app.inject('/shop?period=7d');
    expect(res.statusCode).toBe(200);
    expect(cardValues(res.body)).toMatchObject({ visitors: '2', visits: '3', pageviews: '6', conversions: '1' });
    expect(Number(cardValues(res.body).bounce_rate)).toBeCloseTo(100 / 3, 10);
    expect(log[0]).toMatchObject({ site_id: 'shop', date_range: ['2026-03-04', '2026-03-10'] });

    const filtered = await app.inject('/shop?period=7d&f=is,source,Google');
    expect(cardValues(filtered.body)).toMatchObject({ visitors: '1', visits: '2', pageviews: '4' });
    expect(filtered.body).toContain('Source is <strong>Google</strong>');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(filtered.body).toMatch(/aria-label="Remove filter: Source Google" href|href="\/shop" aria-label="Remove filter/);
  });

  it('links each row to the page filtered by it, keeping the other filters', async () => {
    const app = await appFor(alice);
    const res = await app.inject('/shop?period=30d&f=is,country,DE&tab_acquisition=sources');
    const acquisition = res.body.slice(res.body.indexOf('data-panel="acquisition"'), res.body.indexOf('data-panel="pages"'));
    expect(acquisition).toContain('href="/shop?period=30d&amp;f=is,country,DE&amp;f=is,source,Google&amp;tab_acquisition=sources"');
    expect(res.body).toContain('data-name="DE" data-visitors="1" data-visits="2"');
  });

  it("keeps the filters through the custom-range form (a browser's GET encodes its fields once more)", async () => {
    const app = await appFor(alice);
    const res = await app.inject('/shop?period=30d&f=is,source,Goo%2Cgle&f=is,country,DE');
    const form = /<form class="custom"[\s\S]*?<\/form>/.exec(res.body)?.[0] ?? '';
    const fields = [...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m): [string, string] => [m[1] as string, (m[2] as string).replace(/&amp;/g, '&')]);
    const submitted = new URLSearchParams([...fields, ['from', '2026-03-01'], ['to', '2026-03-05']] as [string, string][]).toString();
    expect(parseViewState(submitted, CARD_METRIC_NAMES, DEFAULT_METRIC)).toMatchObject({
      period: 'custom',
      from: '2026-03-01',
      to: '2026-03-05',
      filters: [{ operator: 'is', key: 'source', values: ['Goo,gle'] }, { operator: 'is', key: 'country', values: ['DE'] }],
    });
  });

  it('shows new and returning visitors in the people panel', async () => {
    const app = await appFor(alice);
    const res = await app.inject('/shop?period=7d');
    const people = res.body.slice(res.body.indexOf('data-panel="people"'), res.body.indexOf('data-panel="key_events"'));
    expect(people).toContain('data-name="New" data-visitors="2" data-visits="2"');
    expect(people).toContain('data-name="Returning" data-visitors="1" data-visits="1"');
    // Its tabs are links that keep the view.
    expect(people).toContain('href="/shop?tab_people=cross_device#panel-people"');
  });

  it('shows the cross-device share of identified people, and exports its rows', async () => {
    const log: StatsQuery[] = [];
    const app = await appFor(alice, log);
    const res = await app.inject('/shop?tab_people=cross_device');
    const people = res.body.slice(res.body.indexOf('data-panel="people"'), res.body.indexOf('data-panel="key_events"'));
    // ann: desktop and mobile; bob: mobile only; u3 never logged in.
    expect(people).toContain('data-cross-device-share="50" data-identified="2"');
    expect(people).toContain('<strong>50%</strong> of 2 identified people were seen on more than one device type');
    expect(people).toContain('data-name="Several device types" data-visitors="1" data-visits="2"');
    expect(people).toContain('data-name="One device type" data-visitors="1" data-visits="1"');
    // Rows of people filter nothing; the tab is asked in one query of person metrics.
    expect(people).not.toContain('Filter by');
    expect(log.some((q) => q.metrics.includes('cross_device_share') && q.dimensions === undefined)).toBe(true);
    const filtered = await app.inject('/shop?tab_people=cross_device&f=is,screen,mobile');
    expect(filtered.body).toContain('data-cross-device-share="0" data-identified="2"');
    const csv = await app.inject('/shop/export/people/cross_device.csv');
    expect(csv.body).toBe('name,people,visits,share\r\nSeveral device types,1,2,50\r\nOne device type,1,1,50\r\n');
  });

  it('shows key events and all events by name, each row a filter of the page', async () => {
    const app = await appFor(alice);
    const res = await app.inject('/shop?period=7d');
    const keyEvents = res.body.slice(res.body.indexOf('data-panel="key_events"'));
    expect(keyEvents).toContain('data-name="Signed Up" data-visitors="1" data-visits="1"');
    expect(keyEvents).toContain('href="/shop?f=is,goal,Signed%20Up"');
    expect(keyEvents).toContain('href="/shop?tab_key_events=events#panel-key_events"');
    const filtered = await app.inject('/shop?f=is,goal,Signed%20Up');
    expect(cardValues(filtered.body)).toMatchObject({ visitors: '1', visits: '1', conversions: '1' });
    expect(filtered.body).toContain('Key event is <strong>Signed Up</strong>');
    const csv = await app.inject('/shop/export/key_events/goals.csv');
    expect(csv.body).toBe('name,visitors,visits\r\nSigned Up,1,1\r\n');
  });

  it('escapes whatever the data holds', async () => {
    const app = await appFor(alice);
    const res = await app.inject('/shop?period=30d&tab_acquisition=sources');
    expect(res.body).not.toContain(EVIL);
    expect(res.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const url = await app.inject(`/shop?period=30d&tab_${encodeURIComponent('"><script>')}=x`);
    expect(url.body).not.toContain('"><script>');
  });

  it('answers a site the viewer may not see exactly as one that does not exist, and sends strangers to log in', async () => {
    const bob = await appFor({ kind: 'share', sites: ['blog'], readOnly: true });
    const hidden = await bob.inject('/shop');
    const missing = await bob.inject('/nowhere');
    expect(hidden.statusCode).toBe(404);
    expect(hidden.body).toBe(missing.body);
    expect((await bob.inject('/shop/export.zip')).statusCode).toBe(404);
    expect((await bob.inject('/shop/current-visitors')).statusCode).toBe(404);
    expect((await bob.inject('/?auth=tok')).headers.location).toBe('/blog?auth=tok');
    const shared = await bob.inject('/blog?auth=tok');
    expect(shared.body).toContain('Shared view');
    expect(shared.body).not.toContain('Log out');
    expect(shared.body).toContain('href="/blog?period=30d&amp;auth=tok"');
    const nobody = await appFor(null);
    expect((await nobody.inject('/shop')).headers.location).toBe('/login?next=%2Fshop');
  });

  it('exports a panel as CSV and the view as a zip of CSVs', async () => {
    const app = await appFor(alice);
    const csv = await app.inject('/shop/export/acquisition/sources.csv?period=30d');
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe('attachment; filename="shop_sources_2026-02-09_2026-03-10.csv"');
    expect(csv.body).toBe(`name,visitors,visits\r\nGoogle,1,2\r\n${EVIL},1,1\r\nBing,1,1\r\n`);
    expect(toCsv(['name', 'n'], [['=HYPERLINK("x")', -1], ['a,b', 2.5]])).toBe(`name,n\r\n"'=HYPERLINK(""x"")",-1\r\n"a,b",2.5\r\n`);
    const zip = await app.inject('/shop/export.zip?period=7d');
    const files = unzipSync(zip.bytes);
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['visitors.csv', 'sources.csv', 'pages.csv', 'countries.csv', 'conversions.csv', 'events.csv', 'cross_device.csv']));
    const visitors = strFromU8(files['visitors.csv'] as Uint8Array).split('\r\n');
    expect(visitors[0]).toBe('date,visitors,visits,pageviews,views_per_visit,bounce_rate,engaged_rate,visit_duration,conversions');
    expect(visitors).toContain('2026-03-10,1,1,3,3,0,100,120,1');
    expect(visitors).toHaveLength(7 + 2);
  });

  it('serves the current visitors and its assets', async () => {
    const app = await appFor(alice);
    expect((await app.inject('/shop/current-visitors')).json()).toEqual({ visitors: 2 });
    const js = await app.inject('/assets/uplot.iife.min.js');
    expect(js.statusCode).toBe(200);
    expect(js.body).toContain('uPlot');
    expect((await app.inject({ url: '/assets/dashboard.css', headers: { 'if-none-match': js.headers.etag ?? '' } })).statusCode).toBe(200);
    const css = await app.inject('/assets/dashboard.css');
    expect((await app.inject({ url: '/assets/dashboard.css', headers: { 'if-none-match': css.headers.etag ?? '' } })).statusCode).toBe(304);
    expect((await app.inject('/assets/..%2Fpages%2Findex.ts')).statusCode).toBe(404);
  });
});
