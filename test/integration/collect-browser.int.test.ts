/**
 * A real browser (Debian's headless Chromium, driven by puppeteer-core) visits a test site served
 * locally that includes the collector's /s.js: three page loads, a client-side route change
 * (history.pushState) and a custom event. The session is then found in ClickHouse through
 * collector → Kafka → worker, with the browser's device, OS and browser, and the browser holds no
 * cookie and no storage entry for any origin.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`; CI installs it). Without it the test
 * is skipped and says why: the browser builds that puppeteer would download are not reachable
 * here, so the system package is the only browser there is.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import puppeteer, { type Browser } from 'puppeteer-core';
import { migrate } from '../../src/clickhouse/migrations';
import { createClickHouseClient, createKafka, createRedis, deleteRedisKeys, newRedisPrefix, uniqueName } from '../support';
import { KEY } from '../support/collect-app';
import { startCollector, type RunningCollector } from '../support/collect-harness';
import { readTopic } from '../support/read-topic';
import { WorkerProcess, createTopic, currentSessions, waitFor, workerEnv } from '../support/worker-harness';

jest.setTimeout(180_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) {
  console.warn(`collect-browser: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
}
// Skipped only when the system browser is missing (reason printed above).
const browserTest = haveBrowser ? it : it.skip;

function site(collectorUrl: string): Server {
  const page = (title: string) => `<!doctype html><html><head><title>${title}</title>
<script defer src="${collectorUrl}/s.js" data-key="${KEY}"></script></head>
<body><h1>${title}</h1><a id="next" href="/pricing">Pricing</a>
<button id="route" onclick="history.pushState({}, '', '/app/settings'); document.title = 'Settings'">route</button>
<button id="signup" onclick="sessionizer.track('Signed Up', { plan: 'pro' })">sign up</button></body></html>`;
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const title = path === '/' ? 'Home' : path.slice(1);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(title));
  });
}

describe('the browser script in a real browser', () => {
  let kafka: Kafka;
  let admin: ClickHouseClient;
  let worker: WorkerProcess | undefined;
  let running: RunningCollector | undefined;
  let server: Server | undefined;
  let browser: Browser | undefined;
  const redisPrefix = newRedisPrefix('collect_browser');

  beforeAll(async () => {
    kafka = await createKafka('collect-browser');
    admin = await createClickHouseClient();
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
    await running?.collector.stop();
    await worker?.kill();
    await admin.close();
    const redis = createRedis();
    await deleteRedisKeys(redis, redisPrefix);
    await deleteRedisKeys(redis, `{${redisPrefix}`);
    await redis.quit();
  });

  browserTest('page views, a route change and a custom event make one cookieless session; nothing is stored', async () => {
    const topic = uniqueName('collect_browser');
    const database = uniqueName('collect_browser');
    await createTopic(kafka, topic, 2);
    await migrate(admin, { database, cluster: '' });
    worker = new WorkerProcess(await workerEnv({ topic, groupId: uniqueName('collect_browser_group'), redisPrefix, database }));
    running = await startCollector(kafka, redisPrefix, { topic, cookieless: true, geoipDatabases: [] });
    server = site(running.url);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await worker.ready();

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    // Headless Chromium names itself "HeadlessChrome", which bot lists rightly flag; a visitor's
    // browser says "Chrome".
    const ua = (await browser.userAgent()).replace('HeadlessChrome', 'Chrome');
    await page.setUserAgent({ userAgent: ua });
    const beacons: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${running?.url}/v1/`)) beacons.push(r.url());
    });

    const settle = () => new Promise((r) => setTimeout(r, 500));
    await page.goto(`${origin}/`, { waitUntil: 'networkidle0' });
    await page.goto(`${origin}/features`, { waitUntil: 'networkidle0' });
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#next')]); // → /pricing
    await page.click('#route'); // client-side: /app/settings
    await settle();
    await page.click('#signup');
    await settle();
    expect(beacons.map((u) => u.replace(running?.url ?? '', ''))).toEqual(['/v1/page', '/v1/page', '/v1/page', '/v1/page', '/v1/track']);

    // Nothing on the device: no cookie for any origin, no storage entry.
    const cdp = await page.createCDPSession();
    const { cookies } = (await cdp.send('Network.getAllCookies')) as { cookies: unknown[] };
    expect(cookies).toEqual([]);
    // Evaluated in the page (as text: the test's TypeScript has no DOM types).
    const stored = await page.evaluate(
      `(async () => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, idb: (await indexedDB.databases()).length }))()`,
    );
    expect(stored).toEqual({ local: 0, session: 0, cookie: '', idb: 0 });
    const collectorPage = await browser.newPage();
    await collectorPage.goto(`${running.url}/s.js`);
    expect(await collectorPage.evaluate('[localStorage.length, sessionStorage.length, document.cookie]')).toEqual([0, 0, '']);

    // Every event on the topic is channel web (sessionizer.track() included) and carries the
    // write key's site.
    const messages = (await readTopic(kafka, topic, 5, 30_000)).map((m) => JSON.parse(m.value) as Record<string, unknown>);
    expect(messages.map((m) => [m.type, m.channel, m.site])).toEqual([
      ['page_view', 'web', 'site-1'],
      ['page_view', 'web', 'site-1'],
      ['page_view', 'web', 'site-1'],
      ['page_view', 'web', 'site-1'],
      ['track', 'web', 'site-1'],
    ]);

    // The session, through collector → Kafka → worker → ClickHouse.
    let rows: Awaited<ReturnType<typeof currentSessions>> = [];
    await waitFor(
      async () => {
        rows = await currentSessions(admin, database);
        return rows.length === 1 && rows[0]?.events === 5;
      },
      90_000,
      () => `sessions: ${JSON.stringify(rows)}\n${worker?.output.slice(-2000)}`,
    );
    expect(rows[0]).toMatchObject({
      events: 5,
      views: 4,
      entry_page: '/',
      exit_page: '/app/settings',
      device_type: 'desktop',
      os: 'Linux',
      browser: 'Chrome',
      channel: 'web',
      is_engaged: 1,
    });
    expect(rows[0]?.anonymous_id).toMatch(/^c-[0-9a-f]{32}$/);
  });
});
