/**
 * The roll-ups and `sessionizer report` give exactly the numbers of the current sessions
 * (`sessions FINAL WHERE sign = 1`) after the worker's retractions, merges, id changes and
 * retried flushes — before and after ClickHouse merges the parts.
 *
 * The rows are the real engine's output over out-of-order traffic (see simulateWorker), plus
 * two hand-made cases: a late event that merges a user's only session of a day into the
 * previous day's, and a late event that moves a session's start (new id, same day).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import { REPORT_DIMENSIONS, sessionReport, type ReportDimension, type ReportRow } from '../../src/clickhouse/report-queries';
import { runReport } from '../../src/commands/report-command';
import type { SessionRow } from '../../src/engine/session-row';
import { generateTraffic } from '../../src/loadgen/traffic';
import { useTestDatabase } from '../support';
import {
  byDayAndGroup,
  chunks,
  configFor,
  expectedTotals,
  insertRows,
  optimizeAll,
  queryRows,
  simulateWorker,
  testClient,
  type ExpectedTotals,
  type SimulatedStream,
} from './clickhouse-fixtures';

const db = useTestDatabase('ch_report');
let client: ClickHouseClient;
let stream: SimulatedStream;

const FROM = '2024-04-30';
const TO = '2024-05-04';
const GROUPINGS: (ReportDimension | undefined)[] = [undefined, ...REPORT_DIMENSIONS];

/** Hand-made events, in arrival order, each in a batch of its own (appended after the traffic). */
function edgeCases(): object[] {
  const ev = (id: string, user: string, iso: string, extra: object = {}) => ({
    event_id: id,
    type: 'page_view',
    timestamp: iso,
    anonymous_id: user,
    page: { path: `/${id}` },
    ...extra,
  });
  return [
    // Two sessions 35 min apart across midnight; then the late 00:05 event bridges them. The
    // user's only session of May 3 is retracted: they must not count as a user on May 3.
    ev('m1', 'midnight', '2024-05-02T23:50:00.000Z', { channel: 'app', device: { type: 'tablet' } }),
    ev('m2', 'midnight', '2024-05-03T00:25:00.000Z', { channel: 'app', device: { type: 'tablet' } }),
    ev('m3', 'midnight', '2024-05-03T00:05:00.000Z', { channel: 'app' }),
    // A session at 10:00; a late 09:50 event moves its start, so its id changes: the old row
    // is retracted and the new one written. The user counts once.
    ev('r1', 'restart', '2024-05-03T10:00:00.000Z', { campaign: { source: 'newsletter', medium: 'email', name: 'may' } }),
    ev('r2', 'restart', '2024-05-03T09:50:00.000Z', { campaign: { source: 'partner', medium: 'cpc', name: 'spring' } }),
  ];
}

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });

  const traffic = [
    ...generateTraffic({
      users: 60,
      visitsPerUser: 3,
      eventsPerVisit: 5,
      startMs: Date.parse('2024-05-01T18:00:00.000Z'),
      spanMs: 30 * 3_600_000,
      duplicateRate: 0.03,
      // Far more disorder than the timeout: late events merge sessions and move starts.
      disorderMs: 50 * 60_000,
      seed: 20240501,
      idPrefix: 'rep-',
    }),
  ];
  // One edge-case event per batch, so each late event comes after the rows it changes.
  const arrivals = [...chunks(traffic, 20), ...edgeCases().map((event) => [event])];
  stream = simulateWorker(arrivals, Date.parse('2024-05-05T00:00:00.000Z'));
  expect(stream.stats.retracts).toBeGreaterThan(5);
  // The edge cases really wrote, then cancelled, the sessions they later merge or move.
  const cancelled = stream.batches.flat().filter((r) => r.sign === -1);
  expect(cancelled.map((r) => [r.user_key, r.started_at])).toEqual(
    expect.arrayContaining([
      ['midnight', '2024-05-03T00:25:00.000Z'],
      ['restart', '2024-05-03T10:00:00.000Z'],
    ]),
  );

  // Flush like the worker: one insert per batch with its own token; every fifth one is
  // retried (the retry must be dropped, in sessions and in the roll-ups).
  for (const [i, rows] of stream.batches.entries()) {
    await insertRows(client, `${db.name}.sessions`, rows, `test-flush-${i}`);
    if (i % 5 === 0) await insertRows(client, `${db.name}.sessions`, rows, `test-flush-${i}`);
  }
}, 120_000);

afterAll(async () => {
  await client.close();
});

function totalsOf(rows: readonly ReportRow[]): ExpectedTotals[] {
  return rows
    .map(({ day, group, sessions, users, engagedSessions, bounces, durationMs, views }) => ({
      day,
      group,
      sessions,
      users,
      engagedSessions,
      bounces,
      durationMs,
      views,
    }))
    .sort(byDayAndGroup);
}

/** The same aggregates computed by ClickHouse from the current sessions. */
async function fromFinal(by?: ReportDimension): Promise<ExpectedTotals[]> {
  const rows = await queryRows<Record<string, string>>(
    client,
    `SELECT toString(toDate(started_at)) AS day, ${by ?? "''"} AS group_value,
            count() AS sessions, uniqExact(user_key) AS users, sum(is_engaged) AS engaged, sum(is_bounce) AS bounces,
            sum(duration_ms) AS duration, sum(views) AS views
     FROM ${db.name}.sessions FINAL
     WHERE sign = 1 AND toDate(started_at) BETWEEN {from:Date} AND {to:Date}
     GROUP BY day, group_value`,
    { from: FROM, to: TO },
  );
  return rows
    .map((r) => ({
      day: r.day as string,
      group: r.group_value as string,
      sessions: Number(r.sessions),
      users: Number(r.users),
      engagedSessions: Number(r.engaged),
      bounces: Number(r.bounces),
      durationMs: Number(r.duration),
      views: Number(r.views),
    }))
    .sort(byDayAndGroup);
}

function expected(by?: ReportDimension): ExpectedTotals[] {
  return expectedTotals(stream.current, by as keyof SessionRow | undefined);
}

describe.each([
  ['as written (parts not merged)', false],
  ['after OPTIMIZE … FINAL on every table', true],
])('report numbers %s', (_label, merge) => {
  beforeAll(async () => {
    if (merge) await optimizeAll(client, db.name);
  });

  it('sessions FINAL WHERE sign = 1 equals the rows the worker left standing', async () => {
    const current = await queryRows<{ session_id: string; version: string }>(
      client,
      `SELECT session_id, version FROM ${db.name}.sessions FINAL WHERE sign = 1 ORDER BY session_id`,
    );
    const standing = [...stream.current].sort((a, b) => (a.session_id < b.session_id ? -1 : 1));
    expect(current).toEqual(standing.map((row) => ({ session_id: row.session_id, version: String(row.version) })));
  });

  it.each(GROUPINGS.map((by) => [by ?? '(day only)', by] as const))('by %s: report = FINAL = expected', async (_name, by) => {
    const want = expected(by);
    expect(want.length).toBeGreaterThan(0);
    expect(await fromFinal(by)).toEqual(want);
    expect(totalsOf(await sessionReport(client, db.name, { from: FROM, to: TO, by }))).toEqual(want);
  });

  it('counts a user whose only session of a day was merged into the previous day on that day no more', async () => {
    const users = await queryRows<{ day: string; net: string }>(
      client,
      `SELECT toString(day) AS day, sum(sessions) AS net FROM ${db.name}.users_daily
       WHERE user_key = 'midnight' GROUP BY day ORDER BY day`,
    );
    // May 3 nets to 0 (merged rows disappear entirely once merged).
    expect(users.filter((u) => u.net !== '0')).toEqual([{ day: '2024-05-02', net: '1' }]);
    const restart = await queryRows<{ net: string }>(
      client,
      `SELECT sum(sessions) AS net FROM ${db.name}.users_daily WHERE user_key = 'restart' AND day = '2024-05-03'`,
    );
    expect(restart).toEqual([{ net: '1' }]);
    const standing = stream.current.filter((r) => r.user_key === 'midnight' || r.user_key === 'restart');
    expect(standing.map((r) => [r.user_key, r.started_at])).toEqual(
      expect.arrayContaining([
        ['midnight', '2024-05-02T23:50:00.000Z'],
        ['restart', '2024-05-03T09:50:00.000Z'],
      ]),
    );
    expect(standing).toHaveLength(2);
  });
});

describe('report rows', () => {
  it('derive the rates from the totals and come sorted by day, then sessions', async () => {
    const rows = await sessionReport(client, db.name, { from: FROM, to: TO, by: 'channel' });
    for (const row of rows) {
      expect(row.engagedRate).toBeCloseTo(row.engagedSessions / row.sessions, 12);
      expect(row.bounceRate).toBeCloseTo(1 - row.engagedRate, 12);
      expect(row.avgDurationMs).toBeCloseTo(row.durationMs / row.sessions, 9);
      expect(row.viewsPerSession).toBeCloseTo(row.views / row.sessions, 12);
    }
    const order = rows.map((r) => `${r.day}|${String(1e9 - r.sessions).padStart(10, '0')}|${r.group}`);
    expect(order).toEqual([...order].sort());
  });

  it('are limited to the requested days', async () => {
    const rows = await sessionReport(client, db.name, { from: '2024-05-02', to: '2024-05-02' });
    expect(rows.map((r) => r.day)).toEqual(['2024-05-02']);
    expect(await sessionReport(client, db.name, { from: '2030-01-01', to: '2030-01-31', by: 'entry_page' })).toEqual([]);
  });

  it('without --from and --to cover the last 30 days up to today', async () => {
    const config = await configFor(db.name);
    const json = async (options: Parameters<typeof runReport>[0], now: number) => {
      let output = '';
      await runReport(options, { config, write: (text) => (output += text), now: () => now });
      return JSON.parse(output) as Array<{ day: string }>;
    };
    // "Today" is TO: the 30 days up to it hold every day of the fixture.
    const all = await json({ format: 'json' }, Date.parse(`${TO}T12:00:00Z`));
    expect(all).toEqual(await json({ from: FROM, to: TO, format: 'json' }, 0));
    const days = [...new Set(all.map((r) => r.day))].sort();
    expect(days).toEqual(expect.arrayContaining(['2024-05-01', '2024-05-03']));
    // On June 1 the last 30 days start on May 3: the earlier days drop out; --people alike.
    const later = Date.parse('2024-06-01T12:00:00Z');
    const kept = days.filter((day) => day >= '2024-05-03');
    expect([...new Set((await json({ format: 'json' }, later)).map((r) => r.day))].sort()).toEqual(kept);
    expect([...new Set((await json({ format: 'json', people: true }, later)).map((r) => r.day))].sort()).toEqual(kept);
  });

  it('print as JSON through the report command with the same numbers', async () => {
    let output = '';
    const config = await configFor(db.name);
    await runReport({ from: FROM, to: TO, by: 'country', format: 'json' }, { config, write: (text) => (output += text) });
    const parsed = JSON.parse(output) as { day: string; country: string; sessions: number; users: number }[];
    const want = expected('country');
    expect(parsed.map((r) => ({ day: r.day, group: r.country, sessions: r.sessions, users: r.users })).sort(byDayAndGroup)).toEqual(
      want.map(({ day, group, sessions, users }) => ({ day, group, sessions, users })),
    );
  });
});
