/**
 * The dashboard app over a real ClickHouse: who sees what (accounts with the login cookie,
 * shared links, API keys), a hidden site answering exactly like a missing one, the login rate
 * limit, no secret in any log line, and the Stats API taking the request shapes of Plausible's
 * documented examples (https://plausible.io/docs/stats-api), with only the site id changed.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { migrate } from '../../src/clickhouse/migrations';
import { parseDashboardAccess } from '../../src/dashboard/config';
import { hashSecret } from '../../src/dashboard/secret-hash';
import { buildDashboardApp, SESSION_COOKIE } from '../../src/dashboard/server';
import { createLogger } from '../../src/observability/logger';
import { useTestDatabase } from '../support';
import { testClient } from './clickhouse-fixtures';
import { ensureSiteColumns, writeSite } from './dashboard-fixtures';

const db = useTestDatabase('dash_server');
let client: ClickHouseClient;
let app: FastifyInstance;
let base = '';
let clock = Date.parse('2024-05-03T12:00:00.000Z');
const logLines: string[] = [];

const PASSWORD = 'correct horse battery staple';
const API_KEY = 'key-7f3c1d9e2b4a6f8e0d1c3b5a';
const SHARE_TOKEN = 'share-0a9b8c7d6e5f4a3b2c1d';
const SESSION_SECRET = 'a-session-secret-of-at-least-32-characters';
const FAST = { ln: 10, r: 8, p: 1 };

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  await ensureSiteColumns(client, db.name);
  await writeSite(client, db.name, { id: 'shop', timezone: 'Europe/Berlin', seed: 11, users: 30, startMs: Date.parse('2024-05-01T08:00:00Z'), spanMs: 30 * 3_600_000 });
  await writeSite(client, db.name, { id: 'blog', timezone: 'UTC', seed: 12, users: 20, startMs: Date.parse('2024-05-01T08:00:00Z'), spanMs: 30 * 3_600_000 });
  const access = parseDashboardAccess(
    JSON.stringify({
      sites: [{ id: 'shop', timezone: 'Europe/Berlin', name: 'The Shop' }, { id: 'blog' }, { id: 'secret' }],
      accounts: [
        { email: 'Ann@Example.com', password_hash: await hashSecret(PASSWORD, FAST), sites: ['shop'] },
        { email: 'root@example.com', password_hash: await hashSecret(PASSWORD, FAST), sites: ['*'] },
      ],
      api_keys: [{ name: 'ci', key_hash: await hashSecret(API_KEY, FAST), sites: ['shop', 'blog'] }],
      shared_links: [{ name: 'public shop', site: 'shop', token_hash: await hashSecret(SHARE_TOKEN, FAST) }],
    }),
    'access.json',
  );
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  // Requests say who the client is with X-Forwarded-For (the test is the trusted proxy), so the
  // rate-limit tests can come from several addresses.
  app = await buildDashboardApp({
    clickhouse: client,
    database: db.name,
    access,
    sessionSecret: SESSION_SECRET,
    log: createLogger('debug', sink, { secrets: [SESSION_SECRET] }),
    now: () => clock,
    sessionTtlMs: 3_600_000,
    loginRateLimit: { max: 5, windowMs: 60_000 },
    trustProxy: true,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  base = `http://127.0.0.1:${address.port}`;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await client.close();
});

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Set-Cookie headers by cookie name: value and attributes (lower-case names). */
  cookies: Map<string, { value: string; attributes: Record<string, string> }>;
}

/** One real HTTP request (no redirects followed). */
async function http(method: string, path: string, options: { body?: string | object; headers?: Record<string, string>; ip?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': options.ip ?? '10.0.0.1', ...options.headers };
  let body: string | undefined;
  if (typeof options.body === 'string') body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${base}${path}`, { method, headers, body, redirect: 'manual' });
  const text = await response.text();
  const cookies = new Map<string, { value: string; attributes: Record<string, string> }>();
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...rest] = line.split(';').map((p) => p.trim());
    const at = (pair as string).indexOf('=');
    const attributes: Record<string, string> = {};
    for (const part of rest) {
      const eq = part.indexOf('=');
      attributes[(eq < 0 ? part : part.slice(0, eq)).toLowerCase()] = eq < 0 ? 'true' : part.slice(eq + 1);
    }
    cookies.set((pair as string).slice(0, at), { value: (pair as string).slice(at + 1), attributes });
  }
  return { statusCode: response.status, headers: Object.fromEntries(response.headers.entries()), body: text, json: () => JSON.parse(text), cookies };
}

async function login(email: string, password: string, ip = '10.0.0.1'): Promise<Answer> {
  return http('POST', '/login', { ip, body: { email, password, next: '/' } });
}

function cookieOf(response: Answer): string {
  const cookie = response.cookies.get(SESSION_COOKIE);
  if (!cookie) throw new Error(`no session cookie (status ${response.statusCode})`);
  return `${SESSION_COOKIE}=${cookie.value}`;
}

const query = (body: object, headers: Record<string, string> = {}, url = '/api/v2/query') => http('POST', url, { body, headers });
const get = (url: string, headers: Record<string, string> = {}) => http('GET', url, { headers });

describe('accounts', () => {
  it('log in with the form, get a signed HttpOnly SameSite=Lax cookie, and see only their sites', async () => {
    const form = await http('POST', '/login', { ip: '10.0.1.1', body: `email=ann%40example.com&password=${encodeURIComponent(PASSWORD)}&next=%2F`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.statusCode).toBe(303);
    expect(form.headers.location).toBe('/');
    const cookie = form.cookies.get(SESSION_COOKIE);
    expect(cookie?.attributes).toMatchObject({ httponly: 'true', samesite: 'Lax', path: '/', 'max-age': '3600' });
    expect(cookie?.attributes.secure).toBeUndefined();
    const home = await get('/', { cookie: cookieOf(form) });
    expect(home.statusCode).toBe(200);
    expect(home.body).toContain('The Shop');
    expect(home.body).not.toContain('blog');
    const stats = await query({ site_id: 'shop', metrics: ['visitors'], date_range: ['2024-05-01', '2024-05-02'] }, { cookie: cookieOf(form) });
    expect(stats.statusCode).toBe(200);
    expect(stats.json().results[0].metrics[0]).toBeGreaterThan(0);
  });

  it('a wrong password or unknown address is refused alike', async () => {
    const wrong = await login('ann@example.com', 'nope', '10.0.2.1');
    const unknown = await login('nobody@example.com', PASSWORD, '10.0.2.2');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.body).toBe(unknown.body);
    expect(wrong.cookies.size).toBe(0);
  });

  it('without a login, pages redirect to /login and the API answers 401', async () => {
    const page = await get('/');
    expect(page.statusCode).toBe(302);
    expect(page.headers.location).toBe('/login?next=%2F');
    const api = await query({ site_id: 'shop', metrics: ['visitors'], date_range: '7d' });
    expect(api.statusCode).toBe(401);
  });

  it('a tampered, expired or logged-out cookie is no login', async () => {
    const ok = await login('ann@example.com', PASSWORD, '10.0.3.1');
    const cookie = cookieOf(ok);
    const tampered = cookie.replace(/\.([^.]*)$/, (_m, sig: string) => `.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`);
    expect((await get('/', { cookie: tampered })).statusCode).toBe(302);
    const saved = clock;
    clock += 3_600_001;
    expect((await get('/', { cookie })).statusCode).toBe(302);
    clock = saved;
    expect((await get('/', { cookie })).statusCode).toBe(200);
    const out = await http('POST', '/logout', { headers: { cookie } });
    expect(out.statusCode).toBe(303);
    expect(out.cookies.get(SESSION_COOKIE)?.value).toBe('');
  });

  it('a site the account may not see answers exactly like a site that does not exist', async () => {
    const cookie = cookieOf(await login('ann@example.com', PASSWORD, '10.0.4.1'));
    const body = (site: string) => ({ site_id: site, metrics: ['visitors'], date_range: '7d' });
    const hidden = await query(body('blog'), { cookie });
    const missing = await query(body('nosuch'), { cookie });
    expect(hidden.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(hidden.json()).toEqual({ error: "site 'blog' not found" });
    expect(missing.json()).toEqual({ error: "site 'nosuch' not found" });
    const same = (h: Record<string, string>) => Object.keys(h).filter((k) => k !== 'date').sort();
    expect(same(hidden.headers)).toEqual(same(missing.headers));
    // "*" is every site of the file.
    const root = cookieOf(await login('root@example.com', PASSWORD, '10.0.4.2'));
    expect((await query(body('blog'), { cookie: root })).statusCode).toBe(200);
  });

  it('login attempts are rate-limited per client address', async () => {
    const codes: number[] = [];
    // One at a time: each attempt waits for the (deliberately slow) hash check.
    for (let i = 0; i < 7; i++) codes.push((await login('ann@example.com', 'guess', '10.9.9.9')).statusCode);
    expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(codes.slice(5)).toEqual([429, 429]);
    // Another address is not held back.
    expect((await login('ann@example.com', PASSWORD, '10.9.9.10')).statusCode).toBe(303);
  });
});

describe('API keys', () => {
  it('Bearer KEY queries its sites; another site is not found; a wrong key is 401', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    expect((await query({ site_id: 'blog', metrics: ['visits'], date_range: '7d' }, auth)).statusCode).toBe(200);
    const hidden = await query({ site_id: 'secret', metrics: ['visits'], date_range: '7d' }, auth);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json()).toEqual({ error: "site 'secret' not found" });
    expect((await query({ site_id: 'blog', metrics: ['visits'], date_range: '7d' }, { authorization: 'Bearer wrong' })).statusCode).toBe(401);
  });

  it('Accept: text/csv gives the same rows as CSV', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const body = { site_id: 'shop', metrics: ['visitors', 'visits'], date_range: ['2024-05-01', '2024-05-02'], dimensions: ['visit:device'] };
    const json = (await query(body, auth)).json();
    const csv = await query(body, { ...auth, accept: 'text/csv' });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\n');
    expect(lines[0]).toBe('visit:device,visitors,visits');
    expect(lines.slice(1)).toEqual(json.results.map((r: { dimensions: string[]; metrics: number[] }) => [...r.dimensions, ...r.metrics].join(',')));
    expect(lines.length).toBeGreaterThan(1);
  });

  it('unknown metrics, dimensions, filters and fields are 400 naming them', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const cases: [object, string][] = [
      [{ metrics: ['visitors', 'time_on_page'] }, 'time_on_page'],
      [{ dimensions: ['visit:planet'] }, 'visit:planet'],
      [{ filters: [['is', 'visit:planet', ['x']]] }, 'visit:planet'],
      [{ filters: [['equals', 'visit:source', ['x']]] }, 'equals'],
      [{ limit: 5 }, 'limit'],
      [{ date_range: 'fortnight' }, 'date_range'],
    ];
    for (const [change, name] of cases) {
      const response = await query({ site_id: 'shop', metrics: ['visitors'], date_range: '7d', ...change }, auth);
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toContain(name);
    }
  });
});

describe('shared links', () => {
  it('?auth=TOKEN shows its one site read-only, and nothing else', async () => {
    // A shared link lands on its site's page (the token kept in the address).
    const follow = async (url: string) => {
      const first = await get(url);
      return first.statusCode === 302 ? get(String(first.headers.location)) : first;
    };
    const landing = await get(`/?auth=${SHARE_TOKEN}`);
    expect([landing.statusCode, landing.headers.location]).toEqual([302, `/shop?auth=${SHARE_TOKEN}`]);
    const page = await follow(`/?auth=${SHARE_TOKEN}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('The Shop');
    expect(page.body).not.toContain('Log out');
    expect((await query({ site_id: 'shop', metrics: ['visits'], date_range: '7d' }, {}, `/api/v2/query?auth=${SHARE_TOKEN}`)).statusCode).toBe(200);
    const other = await query({ site_id: 'blog', metrics: ['visits'], date_range: '7d' }, {}, `/api/v2/query?auth=${SHARE_TOKEN}`);
    expect(other.statusCode).toBe(404);
    expect((await get('/?auth=wrong-token')).statusCode).toBe(302);
    const share = await follow(`/share/shop?auth=${SHARE_TOKEN}`);
    expect(share.statusCode).toBe(200);
    expect(share.body).toContain('The Shop');
    const hidden = await follow(`/share/blog?auth=${SHARE_TOKEN}`);
    const missing = await follow(`/share/nosuch?auth=${SHARE_TOKEN}`);
    expect([hidden.statusCode, missing.statusCode]).toEqual([404, 404]);
    expect(hidden.body).toBe(missing.body);
  });
});

describe("Plausible's documented request examples", () => {
  const auth = { authorization: `Bearer ${API_KEY}` };
  const examples: [string, object][] = [
    ['aggregate', { site_id: 'shop', metrics: ['visitors', 'events'], date_range: '7d' }],
    ['first request', { site_id: 'shop', metrics: ['visitors', 'events'], date_range: ['2024-04-01', '2024-05-01'] }],
    ['custom date range', { site_id: 'shop', metrics: ['visitors'], date_range: ['2024-04-20', '2024-05-03'] }],
    ['time series', { site_id: 'shop', metrics: ['visitors', 'events'], date_range: '7d', filters: [['is', 'visit:os', ['GNU/Linux', 'Mac']]], dimensions: ['time:day'] }],
    ['time labels', { site_id: 'shop', metrics: ['visitors'], date_range: 'day', dimensions: ['time:hour'], include: { time_labels: true } }],
    ['utm', { site_id: 'shop', metrics: ['visitors', 'events', 'pageviews'], date_range: '7d', dimensions: ['visit:utm_medium', 'visit:utm_source'] }],
    ['pagination', { site_id: 'shop', metrics: ['visitors', 'events', 'pageviews'], date_range: '7d', dimensions: ['visit:utm_medium', 'visit:utm_source'], include: { total_rows: true }, pagination: { limit: 3, offset: 1 } }],
    ['country and city', { site_id: 'shop', metrics: ['visitors', 'pageviews', 'bounce_rate'], date_range: '7d', filters: [['is_not', 'visit:country_name', ['']]], dimensions: ['visit:country_name', 'visit:city_name'] }],
    ['imports', { site_id: 'shop', metrics: ['visitors', 'events'], date_range: '7d', include: { imports: true } }],
  ];

  it.each(examples)('%s: 200 in the documented answer shape', async (_name, body) => {
    const response = await query(body, auth);
    expect(response.statusCode).toBe(200);
    const answer = response.json();
    expect(Object.keys(answer).sort()).toEqual(['meta', 'query', 'results']);
    const metrics = (body as { metrics: string[] }).metrics;
    const dimensions = (body as { dimensions?: string[] }).dimensions ?? [];
    // An aggregate always has its one row; a breakdown may be empty (no Mac on this site).
    if (dimensions.length === 0) expect(answer.results).toHaveLength(1);
    for (const row of answer.results) {
      expect(row.metrics).toHaveLength(metrics.length);
      expect(row.dimensions).toHaveLength(dimensions.length);
      for (const value of row.metrics) expect(typeof value).toBe('number');
      for (const value of row.dimensions) expect(typeof value).toBe('string');
    }
    expect(answer.query.date_range).toHaveLength(2);
    if ((body as { include?: { time_labels?: boolean } }).include?.time_labels) expect(answer.meta.time_labels).toHaveLength(24);
  });

  it('the pagination example pages through the same rows as an unpaginated query', async () => {
    const base = { site_id: 'shop', metrics: ['visitors', 'events', 'pageviews'], date_range: '7d', dimensions: ['visit:utm_medium', 'visit:utm_source'] };
    const all = (await query(base, auth)).json();
    const page = (await query({ ...base, include: { total_rows: true }, pagination: { limit: 3, offset: 1 } }, auth)).json();
    expect(page.results).toEqual(all.results.slice(1, 4));
    expect(page.meta.total_rows).toBe(all.results.length);
  });

  it('the country-and-city example gives country names', async () => {
    const answer = (await query({ site_id: 'shop', metrics: ['visitors'], date_range: '7d', dimensions: ['visit:country', 'visit:country_name'] }, auth)).json();
    const germany = answer.results.find((r: { dimensions: string[] }) => r.dimensions[0] === 'DE');
    if (germany) expect(germany.dimensions[1]).toBe('Germany');
    expect(answer.results.every((r: { dimensions: string[] }) => r.dimensions[0] === '' || r.dimensions[1] !== '')).toBe(true);
  });

  it.each([
    ['filtering basics', [['contains', 'event:page', ['/docs', '/pricing']], ['is', 'visit:country_name', ['Estonia', 'United States of America']]]],
    ['case-insensitive filtering', [['contains', 'event:page', ['blog'], { case_sensitive: false }]]],
  ])('%s: event:page filters are answered (sessions with such a page view)', async (_name, filters) => {
    const response = await query({ site_id: 'shop', metrics: ['visitors'], date_range: '7d', filters }, auth);
    expect(response.statusCode).toBe(200);
    expect(response.json().results).toHaveLength(1);
  });

  it('a dimension we do not know is 400 naming it', async () => {
    const response = await query({ site_id: 'shop', metrics: ['visitors'], date_range: '7d', dimensions: ['event:planet'] }, auth);
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toContain('event:planet');
  });
});

describe('the key events and people panels over ClickHouse', () => {
  const view = 'period=custom&from=2024-05-01&to=2024-05-02';
  const auth = { authorization: `Bearer ${API_KEY}` };
  const panelOf = (body: string, id: string) => body.slice(body.indexOf(`data-panel="${id}"`), body.indexOf('</section>', body.indexOf(`data-panel="${id}"`)));
  const rowsOf = (panel: string) => [...panel.matchAll(/data-name="([^"]*)" data-visitors="(\d+)" data-visits="(\d+)"/g)].map((m) => [m[1], Number(m[2]), Number(m[3])]);

  it('rows of key events and of all events equal the Stats API; a click filters the page by the event; the CSV holds every row', async () => {
    const cookie = cookieOf(await login('root@example.com', PASSWORD, '10.0.9.1'));
    for (const [tab, dimension, file] of [['goals', 'event:goal', 'goals'], ['events', 'event:name', 'events']] as const) {
      const page = await get(`/shop?${view}&tab_key_events=${tab}`, { cookie });
      expect(page.statusCode).toBe(200);
      const panel = panelOf(page.body, 'key_events');
      const body = { site_id: 'shop', metrics: ['visitors', 'visits'], date_range: ['2024-05-01', '2024-05-02'], dimensions: [dimension], order_by: [['visitors', 'desc'], ['visits', 'desc']] };
      const api = (await query(body, auth)).json();
      expect(api.results.length).toBeGreaterThan(0);
      expect(rowsOf(panel)).toEqual(api.results.slice(0, 10).map((r: { dimensions: string[]; metrics: number[] }) => [r.dimensions[0], ...r.metrics]));
      const csv = await get(`/shop/export/key_events/${file}.csv?${view}`, { cookie });
      expect(csv.body.trim().split('\r\n').slice(1)).toEqual(api.results.map((r: { dimensions: string[]; metrics: number[] }) => [r.dimensions[0], ...r.metrics].join(',')));
      // The first row's link filters the whole page: its cards are the sessions with that event.
      const [name, visitors, visits] = rowsOf(panel)[0] as [string, number, number];
      const href = (/<a href="([^"]+)" title="Filter by/.exec(panel)?.[1] as string).replace(/&amp;/g, '&');
      const filtered = await get(href, { cookie });
      expect(filtered.body).toContain(`data-metric="visitors" data-value="${visitors}"`);
      expect(filtered.body).toContain(`data-metric="visits" data-value="${visits}"`);
      expect(filtered.body).toContain(`<strong>${name}</strong>`);
    }
  });

  it('the cross-device tab shows the Stats API’s person figures, and exports them', async () => {
    const cookie = cookieOf(await login('root@example.com', PASSWORD, '10.0.9.2'));
    const page = await get(`/shop?${view}&tab_people=cross_device`, { cookie });
    const api = (await query({ site_id: 'shop', metrics: ['identified_people', 'identified_visits', 'cross_device_people', 'cross_device_visits', 'cross_device_share'], date_range: ['2024-05-01', '2024-05-02'] }, auth)).json();
    const [people, visits, cross, crossVisits, share] = api.results[0].metrics as number[];
    expect(people).toBeGreaterThan(0);
    const panel = panelOf(page.body, 'people');
    expect(panel).toContain(`data-cross-device-share="${share}" data-identified="${people}"`);
    expect(rowsOf(panel)).toEqual([['Several device types', cross, crossVisits], ['One device type', (people as number) - (cross as number), (visits as number) - (crossVisits as number)]]);
    const csv = await get(`/shop/export/people/cross_device.csv?${view}`, { cookie });
    expect(csv.body.split('\r\n')[0]).toBe('name,people,visits,share');
    expect(csv.body.split('\r\n')[1]).toBe(`Several device types,${cross},${crossVisits},${share}`);
  });
});

describe('logs', () => {
  it('never carry a password, API key, shared-link token, session cookie or the session secret', async () => {
    const cookie = cookieOf(await login('ann@example.com', PASSWORD, '10.0.5.1'));
    await get(`/?auth=${SHARE_TOKEN}`);
    await get('/', { cookie });
    await query({ site_id: 'shop', metrics: ['nope'], date_range: '7d' }, { authorization: `Bearer ${API_KEY}` });
    const text = logLines.join('');
    expect(logLines.length).toBeGreaterThan(3);
    expect(text).toContain('[redacted]');
    for (const secret of [PASSWORD, API_KEY, SHARE_TOKEN, SESSION_SECRET, cookie.split('=')[1] as string]) expect(text).not.toContain(secret);
  });
});
