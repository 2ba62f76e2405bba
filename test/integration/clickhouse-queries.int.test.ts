/**
 * Every ```sql block of docs/queries.md runs against the migrated schema, filled with recent
 * traffic (the queries look at the last days relative to today) passed through the real engine,
 * and returns rows.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { generateTraffic } from '../../src/loadgen/traffic';
import { useTestDatabase } from '../support';
import { chunks, insertEventRows, insertRows, simulateWorker, testClient } from './clickhouse-fixtures';

const DOC = path.resolve(__dirname, '../../docs/queries.md');

/** The ```sql blocks of a markdown text, with the heading above each. */
function sqlBlocks(markdown: string): { heading: string; sql: string }[] {
  const blocks: { heading: string; sql: string }[] = [];
  let heading = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (line.trim() !== '```sql') continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`docs/queries.md: unterminated sql block after line ${i + 1}`);
    blocks.push({ heading, sql: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

const blocks = sqlBlocks(readFileSync(DOC, 'utf8'));

/**
 * One customer the people queries name (u-1042): a spring newsletter click on the phone, a
 * login on the laptop, the app, a login on the phone a day later, then a store purchase by
 * user id alone. (Loadgen's visitors each use one device and channel.)
 */
function journeyOfU1042(now: number): Record<string, unknown>[] {
  const at = (hoursAgo: number, minutes = 0) => new Date(now - hoursAgo * 3_600_000 + minutes * 60_000).toISOString();
  const spring = { source: 'newsletter', medium: 'email', name: 'spring' };
  return [
    { event_id: 'u1042-1', type: 'page_view', timestamp: at(53), anonymous_id: 'doc-phone', channel: 'web', campaign: spring, page: { path: '/spring' }, device: { type: 'mobile' } },
    { event_id: 'u1042-2', type: 'page_view', timestamp: at(53, 2), anonymous_id: 'doc-phone', channel: 'web', page: { path: '/pricing' }, device: { type: 'mobile' } },
    { event_id: 'u1042-3', type: 'page_view', timestamp: at(52), anonymous_id: 'doc-laptop', channel: 'web', page: { path: '/' }, device: { type: 'desktop' } },
    { event_id: 'u1042-4', type: 'login', timestamp: at(52, 3), anonymous_id: 'doc-laptop', user_id: 'u-1042', channel: 'web', device: { type: 'desktop' } },
    { event_id: 'u1042-5', type: 'screen_view', timestamp: at(49), anonymous_id: 'doc-app', user_id: 'u-1042', channel: 'app', name: 'Cart', key_event: true },
    { event_id: 'u1042-6', type: 'login', timestamp: at(28), anonymous_id: 'doc-phone', user_id: 'u-1042', channel: 'web', device: { type: 'mobile' } },
    { event_id: 'u1042-7', type: 'purchase', timestamp: at(26), user_id: 'u-1042', channel: 'store', key_event: true, geo: { country: 'DE' } },
  ];
}
const db = useTestDatabase('ch_queries');
let writer: ClickHouseClient;

beforeAll(async () => {
  writer = await testClient(db.name);
  await migrate(writer, { database: db.name });
  const now = Date.now();
  const traffic = [
    ...generateTraffic({
      users: 120,
      visitsPerUser: 3,
      eventsPerVisit: 5,
      startMs: now - 3 * 86_400_000,
      spanMs: 3 * 86_400_000 - 3_600_000,
      disorderMs: 5 * 60_000,
      seed: 7,
    }),
    ...journeyOfU1042(now),
  ].filter((event) => Number(new Date(event.timestamp as string | number)) < now);
  // No final close: the sessions of the last half hour stay open, as they would be live.
  const stream = simulateWorker(chunks(traffic, 200), -Infinity);
  for (const [i, rows] of stream.batches.entries()) await insertRows(writer, `${db.name}.sessions`, rows, `q-${i}`);
  for (const [i, rows] of chunks(stream.events, 1000).entries()) await insertEventRows(writer, db.name, rows, `qe-${i}`);
}, 120_000);

afterAll(async () => {
  await writer.close();
});

it('docs/queries.md has the ten questions, each with SQL', () => {
  const numbered = new Set(blocks.map((b) => /^(\d+)\./.exec(b.heading)?.[1]).filter(Boolean));
  expect([...numbered]).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
});

async function run(sql: string): Promise<Record<string, unknown>[]> {
  // db.client's default database is the test database, as `--database` would be for an analyst.
  // Every query of the page reads one site, given as the parameter {site:String}.
  const result = await db.client.query({ query: sql, query_params: { site: 'default' }, format: 'JSONEachRow' });
  return result.json<Record<string, unknown>>();
}

it.each(blocks.map((b, i) => [`${i + 1}: ${b.heading}`, b.sql] as const))('runs and returns rows — %s', async (_name, sql) => {
  expect((await run(sql)).length).toBeGreaterThan(0);
});

it('counts exactly the sessions that hold a key event (question 9)', async () => {
  const block = blocks.find((b) => b.heading.startsWith('9.'));
  const rows = await run(block?.sql ?? '');
  const converting = rows.reduce((n, r) => n + Number(r.converting_sessions), 0);
  // The same count, matched here in plain code.
  const sessions = await run(`
    SELECT user_key, toUnixTimestamp64Milli(started_at) AS s, toUnixTimestamp64Milli(ended_at) AS e
    FROM sessions FINAL WHERE sign = 1 AND toDate(started_at) >= today() - 29`);
  const keyEvents = await run('SELECT DISTINCT user_key, toUnixTimestamp64Milli(timestamp) AS t FROM events WHERE key_event = 1');
  const expected = sessions.filter((s) =>
    keyEvents.some((k) => k.user_key === s.user_key && Number(k.t) >= Number(s.s) && Number(k.t) <= Number(s.e)),
  ).length;
  expect(expected).toBeGreaterThan(0);
  expect(converting).toBe(expected);
});

it("follows u-1042 across phone, laptop, app and store, the phone's anonymous session included (a person's journey)", async () => {
  const block = blocks.find((b) => b.heading === "A person's journey");
  const rows = await run(block?.sql ?? '');
  expect(rows.map((r) => [r.person_session_number, r.channel, r.user_key])).toEqual([
    [1, 'web', 'doc-phone'],
    [2, 'web', 'doc-laptop'],
    [3, 'app', 'doc-app'],
    [4, 'web', 'doc-phone'],
    [5, 'store', 'u-1042'],
  ]);
  const moves = await run(blocks.find((b) => b.heading.startsWith('Channels people move'))?.sql ?? '');
  expect(moves).toEqual(expect.arrayContaining([expect.objectContaining({ from_channel: 'web', to_channel: 'app' }), expect.objectContaining({ from_channel: 'web', to_channel: 'store' })]));
});
