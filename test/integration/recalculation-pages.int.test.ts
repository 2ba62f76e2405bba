/**
 * Historical recalculation on large pages: with the default `--page-users` over 50,000 users,
 * no request URL carries a user key (the keys travel as external data in the body), the result
 * equals `recompute` field for field, and it stays fast. Failures name what was being done and
 * why: the server's message, or the HTTP status when there is none.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouseClient as createAppClickHouseClient } from '../../src/clickhouse/client';
import { toEventRow } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { ClickHouseSink } from '../../src/clickhouse/session-sink';
import { runRecalculation } from '../../src/commands/recompute-command';
import { loadConfig } from '../../src/config';
import { ClickHouseQueryError, ServiceUnavailableError } from '../../src/errors';
import { validateEvent } from '../../src/events/parse-event';
import type { RawEvent } from '../../src/loadgen/traffic';
import { ClickHouseSource } from '../../src/recalc/clickhouse-source';
import { createClickHouseClient, getClickHouse, getRedisUrl, newRedisPrefix, uniqueName } from '../support';
import { currentSessions, recomputeRecords, withoutOpenFlag } from '../support/worker-harness';

jest.setTimeout(180_000);

const USERS = 50_000;
const MINUTE = 60_000;
const t0 = Date.parse('2024-06-01T08:00:00Z');

/** An HTTP proxy in front of ClickHouse that records every request line, or answers with `reply`. */
async function recordingProxy(target: string, reply?: { status: number; body: string }) {
  const upstream = new URL(target);
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    if (reply) {
      req.resume();
      req.on('end', () => res.writeHead(reply.status, { 'Content-Length': Buffer.byteLength(reply.body) }).end(reply.body));
      return;
    }
    const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, urls, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function configFor(url: string, database: string, extra: Record<string, string> = {}) {
  return loadConfig({
    ...extra,
    CLICKHOUSE_URL: url,
    CLICKHOUSE_DATABASE: database,
    REDIS_URL: getRedisUrl(),
    REDIS_KEY_PREFIX: newRedisPrefix('pages'),
    KAFKA_TOPICS: uniqueName('pages'),
    LOG_LEVEL: 'warn',
  });
}

let admin: ClickHouseClient;
beforeAll(async () => {
  admin = await createClickHouseClient();
});
afterAll(async () => {
  await admin.close();
});

it(`recalculates ${USERS.toLocaleString('en')} users with the default page size, no user key in any URL, equal to recompute, within 60 s`, async () => {
  const database = uniqueName('pages');
  await migrate(admin, { database, cluster: '' });
  // Keys of 40+ characters: 500 of them in a URL would be over 20 KB (Node's HTTP server, like
  // many proxies, refuses request heads over 16 KiB).
  const events: RawEvent[] = [];
  for (let u = 0; u < USERS; u++) {
    const key = `visitor-${u.toString(36).padStart(6, '0')}-${'x'.repeat(24)}`;
    const at = t0 + (u % 600) * MINUTE;
    events.push({ event_id: `p${u}a`, type: 'page_view', timestamp: new Date(at).toISOString(), anonymous_id: key, page: { path: '/a' } });
    // Every third user comes back after the timeout: two sessions, numbered 1 and 2.
    const gap = u % 3 === 0 ? 45 * MINUTE : 2 * MINUTE;
    events.push({ event_id: `p${u}b`, type: 'page_view', timestamp: new Date(at + gap).toISOString(), anonymous_id: key, page: { path: '/b' } });
  }
  const sink = new ClickHouseSink(admin, database);
  for (let i = 0; i < events.length; i += 25_000) {
    const rows = events.slice(i, i + 25_000).map((event) => {
      const raw = JSON.stringify(event);
      const parsed = validateEvent(JSON.parse(raw));
      if (!parsed.ok) throw parsed.error;
      return toEventRow(parsed.valid, raw);
    });
    await sink.insertEvents(rows, `pages-${i}`);
  }

  const { url } = await getClickHouse();
  const proxy = await recordingProxy(url);
  try {
    const started = Date.now();
    const stats = await runRecalculation(configFor(proxy.url, database), { sinceMs: t0 - 60 * MINUTE });
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`recalculation of ${USERS} users (pages of 500): ${seconds.toFixed(1)} s, ${proxy.urls.length} requests\n`);
    expect(stats.totalUsers).toBe(USERS);
    expect(stats.users).toBe(USERS);
    expect(stats.unsettled).toEqual([]);
    expect(stats.added).toBe(USERS + Math.ceil(USERS / 3));
    expect(seconds).toBeLessThan(60);
  } finally {
    await proxy.close();
  }
  // 100 pages, each with several page queries: none carries a key, every URL stays short.
  expect(proxy.urls.length).toBeGreaterThan(USERS / 500);
  for (const requestUrl of proxy.urls) {
    expect(requestUrl).not.toMatch(/visitor-/);
    expect(requestUrl.length).toBeLessThan(4_096);
  }
  const stored = withoutOpenFlag(await currentSessions(admin, database));
  expect(stored).toEqual(await recomputeRecords(events));
});

describe('a failure says what was being done and why', () => {
  it("quotes the server's message", async () => {
    const missing = uniqueName('no_such_db');
    const client = createAppClickHouseClient({ ...configFor('http://unused', missing).clickhouse, url: (await getClickHouse()).url });
    try {
      const source = new ClickHouseSource(client, missing);
      const failure = await source.userPage(0, 'some-key', 500).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ClickHouseQueryError);
      expect((failure as Error).message).toMatch(new RegExp(`^ClickHouse failed while reading the next 500 user keys with events since D from ${missing}\\.events: HTTP \\d+: .*${missing}`));
    } finally {
      await client.close();
    }
  });

  it('inserts: an empty error answer gives the status; a server message keeps its ClickHouse error code', async () => {
    const parsed = validateEvent({ event_id: 'e', type: 'page_view', timestamp: t0, anonymous_id: 'a' });
    if (!parsed.ok) throw parsed.error;
    const row = toEventRow(parsed.valid, '{}');
    const proxy = await recordingProxy('http://127.0.0.1:1', { status: 502, body: '' });
    const viaProxy = createAppClickHouseClient({ ...configFor(proxy.url, 'x').clickhouse });
    const direct = createAppClickHouseClient({ ...configFor((await getClickHouse()).url, 'x').clickhouse });
    try {
      await expect(new ClickHouseSink(viaProxy, 'sessionizer').insertEvents([row], 't1')).rejects.toThrow(/HTTP 502 with no message/);
      const failure = await new ClickHouseSink(direct, uniqueName('no_such_db')).insertEvents([row], 't2').catch((err: unknown) => err);
      expect((failure as { code?: string }).code).toBe('81'); // UNKNOWN_DATABASE, which the worker's retry knows as fatal
    } finally {
      await Promise.all([viaProxy.close(), direct.close(), proxy.close()]);
    }
  });

  it.each([
    { status: 502, body: '', expected: /HTTP 502 with no message from the server/ },
    { status: 414, body: '<html><body>414 Request-URI Too Large</body></html>', expected: /HTTP 414: <html><body>414 Request-URI Too Large/ },
  ])('gives the HTTP status when a proxy answers $status', async ({ status, body, expected }) => {
    const proxy = await recordingProxy('http://127.0.0.1:1', { status, body });
    const database = uniqueName('proxied');
    const client = createAppClickHouseClient({ ...configFor(proxy.url, database).clickhouse });
    try {
      // A page query: what was being done, then the status (and the proxy's own page, if any).
      const failure = await new ClickHouseSource(client, database).countUsers(t0).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ClickHouseQueryError);
      expect((failure as Error).message).toMatch(/^ClickHouse failed while counting the user keys with events since D: /);
      expect((failure as Error).message).toMatch(expected);
      // The command checks the server first and stops there, in one line naming it and the status.
      const command = await runRecalculation(configFor(proxy.url, database, { CONNECT_TIMEOUT_SECONDS: '1' }), { sinceMs: t0 }).catch((err: unknown) => err);
      expect(command).toBeInstanceOf(ServiceUnavailableError);
      expect((command as Error).message).toMatch(new RegExp(`^cannot reach ClickHouse at http://127\\.0\\.0\\.1:\\d+: .*${status}`));
    } finally {
      await client.close();
      await proxy.close();
    }
  });
});

it('counts stored events whose text is not UTF-8 as invalid instead of reading them with U+FFFD', async () => {
  const database = uniqueName('pages_utf8');
  await migrate(admin, { database, cluster: '' });
  const good = { event_id: 'ok1', type: 'page_view', timestamp: '2024-06-01T08:00:00.000Z', anonymous_id: 'u-mixed', page: { title: 'Grüße' } };
  const badRaw = Buffer.from(JSON.stringify({ ...good, event_id: 'bad1', timestamp: '2024-06-01T08:05:00.000Z', page: { title: 'caf\u00e9' } }), 'latin1');
  await admin.command({
    // The page title is read out of raw (an ALIAS column): the bad bytes are in raw.
    query: `INSERT INTO ${database}.events (event_id, user_key, anonymous_id, timestamp, type, raw)
            SELECT 'ok1', 'u-mixed', 'u-mixed', toDateTime64('2024-06-01 08:00:00', 3, 'UTC'), 'page_view', {good:String}
            UNION ALL
            SELECT 'bad1', 'u-mixed', 'u-mixed', toDateTime64('2024-06-01 08:05:00', 3, 'UTC'), 'page_view', unhex({bad:String})`,
    query_params: { good: JSON.stringify(good), bad: badRaw.toString('hex') },
  });
  const stats = await runRecalculation(configFor((await getClickHouse()).url, database), { sinceMs: t0 - 60 * MINUTE });
  expect(stats.events).toBe(1);
  expect(stats.invalidEvents).toBe(1);
  const [session] = withoutOpenFlag(await currentSessions(admin, database));
  expect(session).toMatchObject({ user_key: 'u-mixed', events: 1 });
});

describe('external data over HTTP (what the local chdb server mimics of the real one)', () => {
  async function post(query: string, params: Record<string, string>, parts: Record<string, string>): Promise<{ status: number; text: string }> {
    const { url } = await getClickHouse();
    const form = new FormData();
    for (const [name, content] of Object.entries(parts)) form.append(name, new Blob([content]), `${name}.tsv`);
    const response = await fetch(`${url}/?${new URLSearchParams({ query, ...params })}`, { method: 'POST', body: form });
    return { status: response.status, text: await response.text() };
  }

  it('reads a table from <name>_types (columns _1, _2, …) and from <name>_structure', async () => {
    const byTypes = await post('SELECT _1, _2 FROM t ORDER BY _1 FORMAT JSONEachRow', { t_types: 'String,Int64', output_format_json_quote_64bit_integers: '0' }, { t: 'b\t2\na\\tx\t1\n' });
    expect(byTypes).toEqual({ status: 200, text: '{"_1":"a\\tx","_2":1}\n{"_1":"b","_2":2}\n' });
    const byStructure = await post('SELECT count() AS n, sum(v) AS s FROM t2 FORMAT JSONEachRow', { t2_structure: 'k String, v UInt8', output_format_json_quote_64bit_integers: '0' }, { t2: 'x\t3\ny\t4\n' });
    expect(JSON.parse(byStructure.text)).toEqual({ n: 2, s: 7 });
  });

  it('refuses a file part without a structure', async () => {
    const answer = await post('SELECT 1', {}, { t3: 'x\n' });
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.text).toMatch(/t3_structure/);
  });
});

