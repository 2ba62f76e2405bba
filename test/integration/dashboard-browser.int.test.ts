/**
 * The dashboard in a real browser (Debian's headless Chromium through puppeteer-core) over a
 * ClickHouse database holding two sites' sessions: log in, see the cards equal `report`'s
 * figures, click a source and see every panel filtered, change the range, compare, download
 * CSVs, open a shared link (read-only, one site), fail on another site (404) and a wrong
 * password (nothing shown); no console error; axe-core finds no serious or critical
 * violation. Screenshots (1280 px and 375 px wide) go to DASHBOARD_SCREENSHOTS (a temporary
 * directory by default); docs/images/ holds a pair of them.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`); without it the test is skipped and
 * says why (puppeteer's own browser downloads are not reachable here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { strFromU8, unzipSync } from 'fflate';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { migrate } from '../../src/clickhouse/migrations';
import { sessionReport } from '../../src/clickhouse/report-queries';
import { parseDashboardAccess } from '../../src/dashboard/config';
import { hashSecret } from '../../src/dashboard/secret-hash';
import { createClickHouseClient, dropTestDatabase, getClickHouse, uniqueName } from '../support';
import { insertRows, sessionRow } from './clickhouse-fixtures';

jest.setTimeout(300_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) console.warn(`dashboard-browser: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
// Skipped only when the system browser is missing (reason printed above).
const browserTest = haveBrowser ? it : it.skip;

const SHOTS = process.env.DASHBOARD_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'dashboard-shots-'));
const DAY_MS = 86_400_000;
const SOURCES = ['Google', 'Google', 'Google', 'Bing', '(direct)', 'news.ycombinator.com', 'newsletter'] as const;
const COUNTRIES = ['DE', 'DE', 'FR', 'US', 'GB'] as const;
const DEVICES = [['desktop', 'Linux', 'Firefox'], ['desktop', 'Windows', 'Chrome'], ['mobile', 'iOS', 'Safari'], ['mobile', 'Android', 'Chrome']] as const;
const PAGES = ['/', '/pricing', '/blog/launch', '/docs/start'] as const;

interface Generated {
  site: string;
  user: string;
  startedMs: number;
  durationMs: number;
  views: number;
  source: string;
  country: string;
  device: string;
  keyEvent: boolean;
  /** The user's sessions so far, this one included. */
  number: number;
}

/** A small deterministic generator (mulberry32), so every run has the same traffic shape. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * shop: sessions on each of the 60 days before today, started between 06:00 and 20:00 UTC (the
 * same calendar day in Berlin and in UTC, so `report`'s UTC days and the page's Berlin days
 * agree), and a few in the last two hours; blog: sessions of today and yesterday only.
 */
function generate(now: number): Generated[] {
  const rnd = random(21);
  const sessions: Generated[] = [];
  const today = Date.parse(`${utcDay(now)}T00:00:00Z`);
  const add = (site: string, startedMs: number) => {
    const views = 1 + Math.floor(rnd() * 4);
    sessions.push({
      site,
      user: `${site}-u${Math.floor(rnd() * 60)}`,
      startedMs,
      durationMs: views === 1 ? 0 : Math.floor(rnd() * 600_000),
      views,
      source: pick(rnd, SOURCES),
      country: pick(rnd, COUNTRIES),
      device: String(Math.floor(rnd() * DEVICES.length)),
      keyEvent: views > 1 && rnd() < 0.2,
      number: 0,
    });
  };
  for (let day = 1; day <= 60; day++) {
    const count = 4 + Math.floor(rnd() * 8);
    for (let i = 0; i < count; i++) add('shop', today - day * DAY_MS + 6 * 3_600_000 + Math.floor(rnd() * 14 * 3_600_000));
  }
  // The last two hours; sessions that end at least 6 minutes ago, then three that end 2 minutes
  // ago (the current visitors: active in the last 5 minutes, well inside either edge).
  for (let i = 1; i <= 8; i++) {
    add('shop', now - i * 14 * 60_000);
    const last = sessions[sessions.length - 1] as Generated;
    last.durationMs = Math.min(last.durationMs, 8 * 60_000);
  }
  for (let i = 1; i <= 3; i++) {
    add('shop', now - 3 * 60_000 - i * 1000);
    const last = sessions[sessions.length - 1] as Generated;
    last.durationMs = 60_000 + i * 1000;
  }
  for (let i = 1; i <= 12; i++) add('blog', now - i * 3 * 3_600_000);
  // Users on the other days are returning ones: number each user's sessions in time order.
  const seen = new Map<string, number>();
  for (const s of [...sessions].sort((a, b) => a.startedMs - b.startedMs)) {
    s.number = (seen.get(s.user) ?? 0) + 1;
    seen.set(s.user, s.number);
  }
  return sessions;
}

function sessionRows(sessions: readonly Generated[]): object[] {
  return sessions.map((s) => {
    const [device_type, os, browser] = DEVICES[Number(s.device)] as readonly [string, string, string];
    const bounce = s.views === 1 ? 1 : 0;
    return {
      ...sessionRow({
        user_key: s.user,
        started_at: new Date(s.startedMs).toISOString(),
        duration_ms: s.durationMs,
        views: s.views,
        events: s.views + (s.keyEvent ? 1 : 0),
        entry_page: PAGES[s.views % PAGES.length],
        exit_page: PAGES[(s.views + 1) % PAGES.length],
        source: s.source,
        medium: s.source === 'newsletter' ? 'email' : s.source === '(direct)' ? '(none)' : 'referral',
        country: s.country,
        device_type,
        os,
        browser,
        is_bounce: bounce,
        is_engaged: bounce ? 0 : 1,
        is_open: 0,
        session_number: s.number,
      }),
      sign: 1,
      site: s.site,
    };
  });
}

/** Events: the key events inside their sessions, and each session's last view (current visitors). */
function eventRows(sessions: readonly Generated[]): object[] {
  const rows: object[] = [];
  sessions.forEach((s, i) => {
    const at = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
    rows.push({ site: s.site, event_id: `v${i}`, user_key: s.user, timestamp: at(s.startedMs + s.durationMs), type: 'page', name: '', key_event: 0 });
    if (s.keyEvent) rows.push({ site: s.site, event_id: `k${i}`, user_key: s.user, timestamp: at(s.startedMs + Math.floor(s.durationMs / 2)), type: 'track', name: 'Signed Up', key_event: 1 });
  });
  return rows;
}

/** Until every table has its `site` column from the migrations, the test adds it (a no-op once there). */
async function ensureSiteColumns(client: ClickHouseClient, database: string): Promise<void> {
  for (const table of ['sessions', 'events']) {
    await client.command({ query: `ALTER TABLE ${database}.${table} ADD COLUMN IF NOT EXISTS site LowCardinality(String) DEFAULT 'default'` });
  }
}

function berlinDay(ms: number): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin', year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

const ERRORS: string[] = [];
const REPO = join(__dirname, '..', '..');

/** The dashboard in its own process (test/support/dashboard-server.ts); resolves with its URL. */
async function startDashboard(database: string, accessFile: string): Promise<{ child: ChildProcess; url: string }> {
  const { url, username, password } = await getClickHouse();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(REPO, 'test', 'support', 'dashboard-server.ts')], {
    cwd: REPO,
    env: { ...process.env, CLICKHOUSE_URL: url, CLICKHOUSE_USER: username, CLICKHOUSE_PASSWORD: password, CLICKHOUSE_DATABASE: database, DASHBOARD_TEST_ACCESS: accessFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start in 60 s:\n${output}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] as string });
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dashboard exited (${code}):\n${output}`));
    });
  });
}

async function newPage(browser: Browser, width = 1280): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width, height: 900 });
  page.on('console', (m) => {
    if (m.type() === 'error') ERRORS.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => ERRORS.push(`${page.url()}: ${String(e)}`));
  return page;
}

async function cards(page: Page): Promise<Record<string, number>> {
  return page.$$eval('[data-metric][data-value].card', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-metric'), Number(e.getAttribute('data-value'))])));
}

async function panelRows(page: Page, panel: string): Promise<Record<string, number>> {
  return page.$$eval(`[data-panel="${panel}"] tr[data-name]`, (rows) => Object.fromEntries(rows.map((r) => [r.getAttribute('data-name'), Number(r.getAttribute('data-visits'))])));
}

async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the pages' Content-Security-Policy (no inline
  // script) does not apply to; a <script> tag would be refused.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const found = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3) })))`)) as { id: string; impact: string; nodes: string[] }[];
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.nodes.join(', ')}`);
}

describe('the dashboard in a real browser', () => {
  let admin: ClickHouseClient;
  let dashboard: ChildProcess | undefined;
  let browser: Browser | undefined;
  const database = uniqueName('dashboard_browser');

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    admin = await createClickHouseClient();
  });
  afterAll(async () => {
    await browser?.close();
    dashboard?.kill('SIGTERM');
    await dropTestDatabase(admin, database);
    await admin.close();
  });

  browserTest('log in, read, filter, compare, export, share; accessible and without console errors', async () => {
    const now = Date.now();
    await migrate(admin, { database, cluster: '' });
    await ensureSiteColumns(admin, database);
    const generated = generate(now);
    await insertRows(admin, `${database}.sessions`, sessionRows(generated));
    await insertRows(admin, `${database}.events`, eventRows(generated));

    const [alicePassword, bobPassword, shareToken] = ['alice-secret-1', 'bob-secret-2', 'share-token-3'];
    const accessJson = JSON.stringify({
      sites: [{ id: 'shop', timezone: 'Europe/Berlin', name: 'Shop' }, { id: 'blog', timezone: 'UTC' }],
      accounts: [
        { email: 'alice@example.com', password_hash: await hashSecret(alicePassword), sites: ['*'] },
        { email: 'bob@example.com', password_hash: await hashSecret(bobPassword), sites: ['blog'] },
      ],
      shared_links: [{ name: 'public', site: 'shop', token_hash: await hashSecret(shareToken) }],
    });
    parseDashboardAccess(accessJson, 'access.json'); // fails here, readably, if the file is wrong
    const accessFile = join(mkdtempSync(join(tmpdir(), 'dashboard-access-')), 'access.json');
    writeFileSync(accessFile, accessJson);
    const started = await startDashboard(database, accessFile);
    dashboard = started.child;
    const base = started.url;

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });

    // A wrong password shows nothing.
    const login = async (page: Page, email: string, password: string) => {
      await page.goto(`${base}/login`);
      await page.type('input[name=email]', email);
      await page.type('input[name=password]', password);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    };
    const stranger = await (await browser.createBrowserContext()).newPage();
    await stranger.goto(`${base}/shop`);
    expect(new URL(stranger.url()).pathname).toBe('/login');
    await login(stranger, 'alice@example.com', 'wrong');
    expect(new URL(stranger.url()).pathname).toBe('/login');
    expect(await stranger.$$('[data-metric]')).toHaveLength(0);
    expect(await stranger.content()).not.toContain('Shop');

    // Alice logs in and sees her two sites.
    const page = await newPage(browser);
    await login(page, 'alice@example.com', alicePassword);
    expect(await page.$$eval('[data-site]', (els) => els.map((e) => e.getAttribute('data-site')))).toEqual(['shop', 'blog']);
    const since = (site: string, hours: number) => generated.filter((s) => s.site === site && s.startedMs > now - hours * 3_600_000).length;
    const listed = await page.$$eval('[data-site]', (els) => els.map((e) => Number(e.getAttribute('data-sessions'))));
    // The list counts the running hour and the 23 before it: sessions of 23-24 hours ago may count or not.
    for (const [i, site] of ['shop', 'blog'].entries()) {
      expect(listed[i]).toBeGreaterThanOrEqual(since(site, 23));
      expect(listed[i]).toBeLessThanOrEqual(since(site, 24));
    }
    await page.screenshot({ path: join(SHOTS, 'sites-desktop.png') });
    expect(await axeViolations(page)).toEqual([]);

    // The cards equal `report`'s figures over the same days.
    const today = berlinDay(now);
    const from = berlinDay(Date.parse(`${today}T12:00:00Z`) - 14 * DAY_MS);
    const to = berlinDay(Date.parse(`${today}T12:00:00Z`) - 2 * DAY_MS);
    await page.goto(`${base}/shop?period=custom&from=${from}&to=${to}`);
    await page.waitForSelector('#chart canvas');
    const report = await sessionReport(admin, database, { from, to, site: 'shop' });
    const sum = (f: (r: (typeof report)[number]) => number) => report.reduce((n, r) => n + f(r), 0);
    const visits = sum((r) => r.sessions);
    const shown = await cards(page);
    expect(visits).toBeGreaterThan(30);
    expect(shown.visits).toBe(visits);
    expect(shown.pageviews).toBe(sum((r) => r.views));
    expect(shown.bounce_rate).toBeCloseTo((100 * sum((r) => r.bounces)) / visits, 1);
    expect(shown.engaged_rate).toBeCloseTo((100 * sum((r) => r.engagedSessions)) / visits, 1);
    expect(shown.views_per_visit).toBeCloseTo(sum((r) => r.views) / visits, 2);
    expect(Math.abs((shown.visit_duration ?? NaN) - sum((r) => r.durationMs) / visits / 1000)).toBeLessThanOrEqual(0.5);
    const inRange = generated.filter((s) => s.site === 'shop' && berlinDay(s.startedMs) >= from && berlinDay(s.startedMs) <= to);
    expect(shown.visitors).toBe(new Set(inRange.map((s) => s.user)).size);
    expect(shown.conversions).toBe(inRange.filter((s) => s.keyEvent).length);
    // One day: visitors equal report's users of that day.
    const [oneDay] = report;
    await page.goto(`${base}/shop?period=custom&from=${oneDay?.day}&to=${oneDay?.day}`);
    expect((await cards(page)).visitors).toBe(oneDay?.users);
    await page.screenshot({ path: join(SHOTS, 'site-day-desktop.png'), fullPage: true });

    // Click a source: every panel is filtered by it.
    await page.goto(`${base}/shop?period=custom&from=${from}&to=${to}&tab_acquisition=sources`);
    await Promise.all([page.waitForNavigation(), page.click('[data-panel="acquisition"] tr[data-name="Google"] a')]);
    expect(new URL(page.url()).searchParams.getAll('f')).toEqual(['is,source,Google']);
    expect(await page.$eval('.chip', (e) => e.textContent)).toContain('Google');
    const google = inRange.filter((s) => s.source === 'Google');
    const filtered = await cards(page);
    expect(filtered.visits).toBe(google.length);
    expect(await panelRows(page, 'acquisition')).toEqual({ Google: google.length });
    const byCountry: Record<string, number> = {};
    for (const s of google) byCountry[s.country] = (byCountry[s.country] ?? 0) + 1;
    expect(await panelRows(page, 'locations')).toEqual(byCountry);
    const returning = google.filter((s) => s.number > 1).length;
    expect(await panelRows(page, 'people')).toEqual({ ...(returning > 0 ? { Returning: returning } : {}), ...(google.length > returning ? { New: google.length - returning } : {}) });
    for (const panel of ['devices', 'entry_points', 'pages']) {
      const rows = await panelRows(page, panel);
      expect(Object.values(rows).reduce((a, b) => a + b, 0)).toBe(google.length);
    }
    // A second filter combines with the first; removing a chip removes only it.
    await Promise.all([page.waitForNavigation(), page.click('[data-panel="locations"] tr[data-name="DE"] a')]);
    expect(new URL(page.url()).searchParams.getAll('f')).toEqual(['is,source,Google', 'is,country,DE']);
    expect((await cards(page)).visits).toBe(byCountry.DE);
    await Promise.all([page.waitForNavigation(), page.click('.chip a')]);
    expect(new URL(page.url()).searchParams.getAll('f')).toEqual(['is,country,DE']);

    // Change the range (a link, from the keyboard), then compare with the previous period.
    await page.goto(`${base}/shop?f=is,source,Google`);
    await page.focus('.periods a[href*="period=30d"]');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(new URL(page.url()).searchParams.get('period')).toBe('30d');
    const last30 = generated.filter((s) => s.site === 'shop' && s.source === 'Google' && berlinDay(s.startedMs) >= berlinDay(Date.parse(`${today}T12:00:00Z`) - 29 * DAY_MS));
    expect((await cards(page)).visits).toBe(last30.length);
    await Promise.all([page.waitForNavigation(), page.click('.toggle')]);
    expect(new URL(page.url()).searchParams.get('comparison')).toBe('previous_period');
    await page.waitForSelector('#chart canvas');
    const chart = JSON.parse(await page.$eval('#chart-data', (e) => e.textContent ?? '{}')) as { values: number[]; previous?: number[]; labels: string[]; incompleteIndex: number };
    expect(chart.labels).toHaveLength(30);
    expect(chart.previous).toHaveLength(30);
    expect(chart.incompleteIndex).toBe(29);
    // Visitors per day: each day's distinct users of the filtered sessions.
    const perDay = new Map<string, Set<string>>();
    for (const s of last30) perDay.set(berlinDay(s.startedMs), (perDay.get(berlinDay(s.startedMs)) ?? new Set()).add(s.user));
    expect(chart.values).toEqual(chart.labels.map((day) => perDay.get(day)?.size ?? 0));
    expect(await page.$eval('.u-legend', (e) => e.textContent)).toContain('Previous period');
    await page.waitForFunction(`/^\\d+$/.test(document.querySelector('#current-visitors .n').textContent)`);
    expect(Number(await page.$eval('#current-visitors .n', (e) => e.textContent))).toBe(
      new Set(generated.filter((s) => s.site === 'shop' && s.startedMs + s.durationMs > now - 5 * 60_000).map((s) => s.user)).size,
    );
    await page.screenshot({ path: join(SHOTS, 'site-desktop.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    // A custom range from the form keeps the filter.
    const customPage = await newPage(browser);
    await customPage.goto(page.url());
    await customPage.$eval('input[name=from]', (e, v) => ((e as unknown as { value: string }).value = v), from);
    await customPage.$eval('input[name=to]', (e, v) => ((e as unknown as { value: string }).value = v), to);
    await Promise.all([customPage.waitForNavigation(), customPage.click('.custom button[type=submit]')]);
    const customUrl = new URL(customPage.url());
    expect([customUrl.searchParams.get('period'), customUrl.searchParams.get('from'), customUrl.searchParams.get('to')]).toEqual(['custom', from, to]);
    expect((await cards(customPage)).visits).toBe(google.length);
    await customPage.close();

    // Downloads: a panel's CSV and the whole view's zip, fetched as the browser would.
    const download = async (selector: string) => {
      const href = await page.$eval(selector, (e) => e.getAttribute('href') ?? '');
      return page.evaluate(`fetch(${JSON.stringify(href)}).then(async r => ({ type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), bytes: Array.from(new Uint8Array(await r.arrayBuffer())) }))`) as Promise<{ type: string; disposition: string; bytes: number[] }>;
    };
    const csv = await download('[data-panel="locations"] .panel-foot a');
    expect(csv.type).toBe('text/csv; charset=utf-8');
    expect(csv.disposition).toMatch(/^attachment; filename="shop_countries_\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv"$/);
    const csvLines = Buffer.from(csv.bytes).toString('utf8').trim().split('\r\n');
    expect(csvLines[0]).toBe('name,visitors,visits');
    const countryVisits: Record<string, number> = {};
    for (const s of last30) countryVisits[s.country] = (countryVisits[s.country] ?? 0) + 1;
    expect(Object.fromEntries(csvLines.slice(1).map((l) => [l.split(',')[0], Number(l.split(',')[2])]))).toEqual(countryVisits);
    const zip = await download('.export-all a');
    const files = unzipSync(new Uint8Array(zip.bytes));
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['visitors.csv', 'sources.csv', 'countries.csv', 'devices.csv', 'entry_points.csv']));
    const series = strFromU8(files['visitors.csv'] as Uint8Array).trim().split('\r\n');
    expect(series).toHaveLength(31);
    expect(series.slice(1).reduce((n, l) => n + Number(l.split(',')[2]), 0)).toBe(last30.length);

    // The phone.
    const phone = await newPage(browser, 375);
    await phone.goto(page.url());
    await phone.waitForSelector('#chart canvas');
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await phone.screenshot({ path: join(SHOTS, 'site-phone.png'), fullPage: true });
    expect(await axeViolations(phone)).toEqual([]);

    // A shared link: one site, read-only; any other site is not found.
    const shared = await newPage(browser);
    await shared.goto(`${base}/share/shop?auth=${shareToken}&period=30d`);
    expect(await shared.$eval('.badge', (e) => e.textContent)).toContain('read-only');
    expect(await shared.$('form[action="/logout"]')).toBeNull();
    expect((await cards(shared)).visits).toBe(generated.filter((s) => s.site === 'shop' && berlinDay(s.startedMs) >= berlinDay(Date.parse(`${today}T12:00:00Z`) - 29 * DAY_MS)).length);
    await Promise.all([shared.waitForNavigation(), shared.click('[data-panel="acquisition"] tr[data-name] a')]);
    expect(new URL(shared.url()).searchParams.get('auth')).toBe(shareToken);
    expect(await axeViolations(shared)).toEqual([]);
    expect((await shared.goto(`${base}/blog?auth=${shareToken}`))?.status()).toBe(404);

    // Bob may see blog only: shop answers as a site that does not exist.
    const bobContext = await browser.createBrowserContext();
    const bob = await bobContext.newPage();
    await login(bob, 'bob@example.com', bobPassword);
    const hidden = await bob.goto(`${base}/shop`);
    const hiddenBody = await bob.content();
    const missing = await bob.goto(`${base}/no-such-site`);
    expect(hidden?.status()).toBe(404);
    expect(missing?.status()).toBe(404);
    expect(await bob.content()).toBe(hiddenBody);

    // The only failed loads are the pages this test expected to be not found.
    expect(ERRORS.filter((e) => !(e.startsWith(`${base}/blog?auth=`) && e.includes('status of 404')))).toEqual([]);
  });
});
