/**
 * The event dimensions behind the key events panel and the top pages tab: event:name,
 * event:goal (key events by type) and event:page, as breakdowns and as filters, equal what the
 * stored events say about the sessions standing (each session holding its user key's events
 * between its first and its last event), counted by hand in memory and by a plain SQL query
 * over `sessions FINAL` and `events FINAL`; before and after ClickHouse merges the parts.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import type { EventRow } from '../../src/clickhouse/event-row';
import type { SiteConfig } from '../../src/dashboard/config';
import { parseStatsQuery, runStatsQuery } from '../../src/dashboard/stats/query';
import type { SessionRow } from '../../src/engine/session-row';
import { locationOf } from '../../src/events/session-event';
import { InvalidStatsQueryError } from '../../src/errors';
import { useTestDatabase } from '../support';
import { optimizeAll, queryRows, testClient } from './clickhouse-fixtures';
import { dayOf, ensureSiteColumns, insertEvents, writeSite, type SiteData } from './dashboard-fixtures';

const db = useTestDatabase('dash_events');
let client: ClickHouseClient;
let shop: SiteData;
const SITE: SiteConfig = { id: 'shop', timezone: 'Europe/Berlin', name: 'Shop' };
const OTHER: SiteConfig = { id: 'other', timezone: 'UTC', name: 'Other' };
const START = Date.parse('2024-05-01T18:00:00.000Z');
const RANGE: [string, string] = ['2024-05-01', '2024-05-02'];
const VIEWS = new Set(['page_view', 'screen_view']);

async function ask(body: object) {
  return runStatsQuery({ clickhouse: client, database: db.name, sites: [SITE, OTHER], now: () => Date.parse('2024-05-03T12:00:00Z') }, parseStatsQuery(body));
}

interface SessionEvents {
  session: SessionRow;
  events: EventRow[];
}

/** The standing sessions of the range, each with its user key's events between its first and last event. */
function sessionsWithEvents(): SessionEvents[] {
  const byKey = new Map<string, EventRow[]>();
  for (const e of shop.events) byKey.set(e.user_key, [...(byKey.get(e.user_key) ?? []), e]);
  return shop.current
    .filter((r) => dayOf(r, SITE.timezone) >= RANGE[0] && dayOf(r, SITE.timezone) <= RANGE[1])
    .map((session) => {
      const start = Date.parse(session.started_at);
      const end = Date.parse(session.ended_at);
      return { session, events: (byKey.get(session.user_key) ?? []).filter((e) => e.timestamp >= start && e.timestamp <= end) };
    });
}

type Valued = { value: string; isView: boolean };
/** A track event (Segment, Plausible's custom events) is called by its name, any other by its type. */
const nameOf = (e: EventRow) => (e.type === 'track' ? ((JSON.parse(String(e.raw)) as { name?: string }).name ?? '') || e.type : e.type);
const VALUES: Record<string, (e: EventRow) => Valued | undefined> = {
  'event:name': (e) => ({ value: nameOf(e), isView: VIEWS.has(e.type) }),
  'event:goal': (e) => (e.key_event === 1 ? { value: nameOf(e), isView: VIEWS.has(e.type) } : undefined),
  'event:page': (e) => (VIEWS.has(e.type) ? { value: locationOf(JSON.parse(String(e.raw))), isView: true } : undefined),
};

/** Per value: [visitors, visits, events, pageviews] counted by hand. */
function expectedBreakdown(dimension: string): Record<string, number[]> {
  const groups = new Map<string, { users: Set<string>; visits: number; events: number; views: number }>();
  for (const { session, events } of sessionsWithEvents()) {
    const valued = events.map(VALUES[dimension] as (e: EventRow) => Valued | undefined).filter((v): v is Valued => v !== undefined);
    for (const value of new Set(valued.map((v) => v.value))) {
      const g = groups.get(value) ?? { users: new Set<string>(), visits: 0, events: 0, views: 0 };
      g.users.add(session.user_key);
      g.visits += 1;
      g.events += valued.filter((v) => v.value === value).length;
      g.views += valued.filter((v) => v.value === value && v.isView).length;
      groups.set(value, g);
    }
  }
  return Object.fromEntries([...groups].map(([value, g]) => [value, [g.users.size, g.visits, g.events, g.views]]));
}

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  await ensureSiteColumns(client, db.name);
  shop = await writeSite(client, db.name, { id: SITE.id, timezone: SITE.timezone, seed: 31, users: 90, startMs: START, spanMs: 40 * 3_600_000 });
  // Segment track calls as the mapping stores them (type track, the event's name in `name`), one
  // in each of the first sessions: key events named "Signed Up", and one plain "Added To Cart".
  const tracks = shop.current.slice(0, 12).map((session, i): EventRow => {
    const timestamp = Date.parse(session.started_at);
    const name = i % 4 === 3 ? 'Added To Cart' : 'Signed Up';
    const key = name === 'Signed Up' ? 1 : 0;
    const raw = JSON.stringify({ event_id: `track-${i}`, type: 'track', name, timestamp, anonymous_id: session.anonymous_id, user_id: session.user_id, key_event: key === 1 });
    return { site: SITE.id, event_id: `track-${i}`, user_key: session.user_key, anonymous_id: session.anonymous_id, user_id: session.user_id, timestamp, type: 'track', channel: 'web', key_event: key, raw };
  });
  await insertEvents(client, db.name, SITE.id, tracks);
  shop.events.push(...tracks);
  // A redelivered batch: copies of events already stored, one by one until ClickHouse merges them.
  await insertEvents(client, db.name, SITE.id, shop.events.filter((_, i) => i % 3 === 0));
  // Another site with the same user keys and event ids: none of its events may count for the shop.
  await writeSite(client, db.name, { id: OTHER.id, timezone: OTHER.timezone, seed: 31, users: 90, startMs: START, spanMs: 40 * 3_600_000 });
}, 180_000);

afterAll(async () => {
  await client.close();
});

const METRICS = ['visitors', 'visits', 'events', 'pageviews'];

const checks = () => {
  it.each(['event:name', 'event:goal', 'event:page'])('%s: visitors, sessions, events and views per value equal the events counted by hand', async (dimension) => {
    const expected = expectedBreakdown(dimension);
    // The traffic has several values, key events included.
    expect(Object.keys(expected).length).toBeGreaterThan(1);
    const answer = await ask({ site_id: SITE.id, metrics: METRICS, date_range: RANGE, dimensions: [dimension] });
    expect(Object.fromEntries(answer.results.map((r) => [r.dimensions[0], r.metrics]))).toEqual(expected);
  });

  it('event:goal equals a plain SQL query over sessions FINAL and events FINAL', async () => {
    const sql = await queryRows<{ goal: string; visitors: string; visits: string; events: string }>(
      client,
      `SELECT e.type AS goal, uniqExact(s.user_key) AS visitors, uniqExact(s.session_id) AS visits, count() AS events
       FROM ${db.name}.sessions AS s FINAL
       INNER JOIN (
         SELECT user_key, timestamp, if(type = 'track', JSONExtractString(raw, 'name'), toString(type)) AS type
         FROM ${db.name}.events FINAL WHERE site = {site:String} AND key_event = 1
       ) AS e
         ON s.user_key = e.user_key
       WHERE s.sign = 1 AND s.site = {site:String}
         AND toDate(s.started_at, {tz:String}) BETWEEN {from:Date} AND {to:Date}
         AND e.timestamp >= s.started_at AND e.timestamp <= s.ended_at
       GROUP BY goal`,
      { site: SITE.id, tz: SITE.timezone, from: RANGE[0], to: RANGE[1] },
    );
    expect(sql.map((r) => r.goal)).toContain('Signed Up');
    const answer = await ask({ site_id: SITE.id, metrics: ['visitors', 'visits', 'events'], date_range: RANGE, dimensions: ['event:goal'] });
    expect(new Map(answer.results.map((r) => [r.dimensions[0], r.metrics]))).toEqual(new Map(sql.map((r) => [r.goal, [Number(r.visitors), Number(r.visits), Number(r.events)]])));
  });

  it('a filter on an event dimension keeps the sessions with such an event (is) or without one (is_not)', async () => {
    const all = sessionsWithEvents();
    const goal = Object.keys(expectedBreakdown('event:goal')).sort()[0] as string;
    const did = all.filter(({ events }) => events.some((e) => e.key_event === 1 && nameOf(e) === goal)).map((s) => s.session);
    const didNot = all.filter(({ events }) => !events.some((e) => e.type === 'click')).map((s) => s.session);
    const figures = (rows: SessionRow[]) => [new Set(rows.map((r) => r.user_key)).size, rows.length, rows.reduce((n, r) => n + r.views, 0)];
    expect(did.length).toBeGreaterThan(0);
    const filtered = await ask({ site_id: SITE.id, metrics: ['visitors', 'visits', 'pageviews'], date_range: RANGE, filters: [['is', 'event:goal', [goal]]] });
    expect(filtered.results[0]?.metrics).toEqual(figures(did));
    const without = await ask({ site_id: SITE.id, metrics: ['visitors', 'visits', 'pageviews'], date_range: RANGE, filters: [['is_not', 'event:name', ['CLICK'], { case_sensitive: false }]] });
    expect(without.results[0]?.metrics).toEqual(figures(didNot));
    // With a visit filter and a breakdown: the device types of the sessions that viewed a page.
    const page = Object.keys(expectedBreakdown('event:page')).sort()[0] as string;
    const viewed = all.filter(({ session, events }) => session.device_type !== 'desktop' && events.some((e) => VIEWS.has(e.type) && locationOf(JSON.parse(String(e.raw))) === page));
    const byDevice = await ask({
      site_id: SITE.id,
      metrics: ['visits'],
      date_range: RANGE,
      dimensions: ['visit:device'],
      filters: [['contains', 'event:page', [page]], ['is_not', 'visit:device', ['desktop']]],
    });
    const containing = all.filter(({ session, events }) => session.device_type !== 'desktop' && events.some((e) => VIEWS.has(e.type) && locationOf(JSON.parse(String(e.raw))).includes(page)));
    expect(viewed.length).toBeGreaterThan(0);
    const counts: Record<string, number> = {};
    for (const { session } of containing) counts[session.device_type] = (counts[session.device_type] ?? 0) + 1;
    expect(Object.fromEntries(byDevice.results.map((r) => [r.dimensions[0], r.metrics[0]]))).toEqual(counts);
  });

  it('conversions of the key-event rows are their sessions (every one holds a key event)', async () => {
    const answer = await ask({ site_id: SITE.id, metrics: ['visits', 'conversions'], date_range: RANGE, dimensions: ['event:goal'] });
    expect(answer.results.length).toBeGreaterThan(0);
    for (const row of answer.results) expect(row.metrics[1]).toBe(row.metrics[0]);
  });
};

describe('before merges', checks);
describe('after merges', () => {
  beforeAll(async () => {
    await optimizeAll(client, db.name);
  }, 120_000);
  checks();
});

describe('refusals', () => {
  it.each([
    [{ dimensions: ['event:planet'] }, "Unknown dimension 'event:planet'"],
    [{ filters: [['is', 'event:planet', ['x']]] }, "Unknown filter dimension 'event:planet'"],
    [{ dimensions: ['event:name', 'event:page'] }, 'at most one event dimension'],
    [{ dimensions: ['event:hostname'] }, "Unsupported dimension 'event:hostname'"],
  ])('%j is refused naming it', (change, message) => {
    const body = { site_id: SITE.id, metrics: ['visitors'], date_range: RANGE, ...change };
    expect(() => parseStatsQuery(body)).toThrow(InvalidStatsQueryError);
    expect(() => parseStatsQuery(body)).toThrow(message);
  });
});
