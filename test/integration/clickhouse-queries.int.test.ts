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
  const result = await db.client.query({ query: sql, format: 'JSONEachRow' });
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
