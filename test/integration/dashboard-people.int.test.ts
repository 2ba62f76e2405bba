/**
 * The people panel's figures through the Stats API: new and returning visitors
 * (visit:visitor_type: Returning for a user key's later session), on traffic written as the
 * worker writes it (retractions, merges, renumbered sessions), equal the sessions left standing;
 * and the cross-device share of identified people equals a hand count of a small site and a
 * plain SQL query over `sessions FINAL` and `identity_map`; before and after ClickHouse merges.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { migrate } from '../../src/clickhouse/migrations';
import type { SiteConfig } from '../../src/dashboard/config';
import { parseStatsQuery, runStatsQuery } from '../../src/dashboard/stats/query';
import type { SessionRow } from '../../src/engine/session-row';
import { useTestDatabase } from '../support';
import type { EventRow } from '../../src/clickhouse/event-row';
import { insertRows, optimizeAll, queryRows, sessionRow, signed, testClient } from './clickhouse-fixtures';
import { dayOf, ensureSiteColumns, insertEvents, writeSite, type SiteData } from './dashboard-fixtures';

const db = useTestDatabase('dash_people');
let client: ClickHouseClient;
let shop: SiteData;
const SITE: SiteConfig = { id: 'shop', timezone: 'Europe/Berlin', name: 'Shop' };
const PEOPLE: SiteConfig = { id: 'people', timezone: 'UTC', name: 'People' };
const PEOPLE_RANGE: [string, string] = ['2024-06-10', '2024-06-11'];
const START = Date.parse('2024-05-01T18:00:00.000Z');
const RANGE: [string, string] = ['2024-05-01', '2024-05-03'];

async function ask(body: object) {
  return runStatsQuery({ clickhouse: client, database: db.name, sites: [SITE, PEOPLE], now: () => Date.parse('2024-05-03T12:00:00Z') }, parseStatsQuery(body));
}

function standing(): SessionRow[] {
  return shop.current.filter((r) => dayOf(r, SITE.timezone) >= RANGE[0] && dayOf(r, SITE.timezone) <= RANGE[1]);
}

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  await ensureSiteColumns(client, db.name);
  shop = await writeSite(client, db.name, { id: SITE.id, timezone: SITE.timezone, seed: 77, users: 80, startMs: START, spanMs: 40 * 3_600_000 });
  await writePeople();
}, 180_000);

/** A login: an event with both ids, which the identity map records (latest wins). */
function login(site: string, anonymousId: string, userId: string, at: string): EventRow {
  const timestamp = Date.parse(at);
  const raw = JSON.stringify({ event_id: `login-${anonymousId}-${timestamp}`, type: 'login', timestamp, anonymous_id: anonymousId, user_id: userId });
  return { site, event_id: `login-${anonymousId}-${timestamp}`, user_key: anonymousId, anonymous_id: anonymousId, user_id: userId, timestamp, type: 'login', channel: 'web', key_event: 0, raw };
}

/**
 * The small site of the cross-device figures, counted by hand for 2024-06-10 and -11 (UTC):
 *
 *   ann  desktop (her own id) + mobile (device a2, linked to her)    cross-device, 2 sessions
 *   bob  desktop + desktop (device b2, linked)                        one type, 2
 *   cat  mobile; her tablet session is on the 12th, out of range      one type, 1
 *   dan  mobile + a store purchase (no device type)                   one type, 2
 *   eve  tablet; her desktop session was retracted (sign -1)          one type, 1
 *   fay  mobile (a state replaced by a later one) + desktop           cross-device, 2
 *   gil  desktop; device g1 was linked to gil, then to hal            one type, 1
 *   hal  mobile + desktop (device g1, linked to hal last)             cross-device, 2
 *   anon-x  desktop + mobile, never logged in                         not identified
 *
 * 8 identified people (13 sessions), 3 of them cross-device (6 sessions): 37.5 %. On the site
 * `shop`, device a2 is linked to someone else: links of another site must not count.
 */
async function writePeople(): Promise<void> {
  const site = PEOPLE.id;
  const row = (userKey: string, userId: string, at: string, device: string, extra: object = {}) =>
    sessionRow({ site, user_key: userKey, anonymous_id: userKey === userId ? '' : userKey, user_id: userId, started_at: at, duration_ms: 60_000, device_type: device, ...extra });
  const standing = [
    row('a1', 'u-ann', '2024-06-10T09:00:00.000Z', 'desktop'),
    row('a2', '', '2024-06-11T09:00:00.000Z', 'mobile'),
    row('b1', 'u-bob', '2024-06-10T10:00:00.000Z', 'desktop'),
    row('b2', '', '2024-06-11T10:00:00.000Z', 'desktop'),
    row('c1', 'u-cat', '2024-06-10T11:00:00.000Z', 'mobile'),
    row('c2', 'u-cat', '2024-06-12T11:00:00.000Z', 'tablet'),
    row('d1', 'u-dan', '2024-06-10T12:00:00.000Z', 'mobile'),
    row('u-dan', 'u-dan', '2024-06-11T12:00:00.000Z', '', { channel: 'store' }),
    row('e1', 'u-eve', '2024-06-10T13:00:00.000Z', 'tablet'),
    row('f2', 'u-fay', '2024-06-11T14:00:00.000Z', 'desktop'),
    row('g2', 'u-gil', '2024-06-10T15:00:00.000Z', 'desktop'),
    row('h1', 'u-hal', '2024-06-10T16:00:00.000Z', 'mobile'),
    row('g1', '', '2024-06-11T16:00:00.000Z', 'desktop'),
    row('anon-x', '', '2024-06-10T17:00:00.000Z', 'desktop'),
    row('anon-x', '', '2024-06-11T17:00:00.000Z', 'mobile'),
  ];
  const retracted = row('e2', 'u-eve', '2024-06-11T13:00:00.000Z', 'desktop');
  const replaced = row('f1', 'u-fay', '2024-06-10T14:00:00.000Z', 'mobile', { version: 1, views: 1 });
  const replacement = { ...replaced, version: 2, views: 4, duration_ms: 300_000, ended_at: '2024-06-10T14:05:00.000Z', is_open: 0 as const };
  await insertRows(client, `${db.name}.sessions`, [...standing, retracted, replaced].map((r) => signed(r, 1)), 'people-1');
  await insertRows(client, `${db.name}.sessions`, [signed(retracted, -1), signed(replaced, -1), signed(replacement, 1)], 'people-2');
  await insertEvents(client, db.name, site, [
    login(site, 'a2', 'u-ann', '2024-06-11T09:00:30.000Z'),
    login(site, 'b2', 'u-bob', '2024-06-11T10:00:30.000Z'),
    login(site, 'g1', 'u-gil', '2024-06-01T08:00:00.000Z'),
    login(site, 'g1', 'u-hal', '2024-06-11T16:00:30.000Z'),
  ]);
  await insertEvents(client, db.name, SITE.id, [login(SITE.id, 'a2', 'u-zed', '2024-06-11T09:00:30.000Z')]);
  // The same user keys on the other site, on desktop: they must not make anyone cross-device here.
  await insertRows(client, `${db.name}.sessions`, ['a1', 'c1', 'd1', 'e1'].map((key) => signed({ ...row(key, '', '2024-06-10T20:00:00.000Z', 'desktop'), site: SITE.id }, 1)), 'people-3');
}

const PERSON_METRICS = ['identified_people', 'identified_visits', 'cross_device_people', 'cross_device_visits', 'cross_device_share'];

/** The figures by plain SQL: each session's person (its user id, else its device's last login), current sessions only. */
async function crossDeviceBySql(filter = '1'): Promise<number[]> {
  const [row] = await queryRows<{ people: string; visits: string; cross: string; cross_visits: string }>(
    client,
    `SELECT count() AS people, sum(sessions) AS visits, countIf(device_types >= 2) AS cross, sumIf(sessions, device_types >= 2) AS cross_visits
     FROM (
       SELECT if(s.user_id != '', s.user_id, m.user_id) AS person, count() AS sessions,
              uniqExactIf(s.device_type, s.device_type != '') AS device_types
       FROM ${db.name}.sessions AS s FINAL
       LEFT JOIN ${db.name}.identity_map AS m ON s.site = m.site AND s.anonymous_id = m.anonymous_id
       WHERE s.sign = 1 AND s.site = {site:String} AND toDate(s.started_at) BETWEEN {from:Date} AND {to:Date} AND ${filter}
       GROUP BY person
       HAVING person != ''
     )`,
    { site: PEOPLE.id, from: PEOPLE_RANGE[0], to: PEOPLE_RANGE[1] },
  );
  const n = (v: string | undefined) => Number(v ?? 0);
  const people = n(row?.people);
  const cross = n(row?.cross);
  return [people, n(row?.visits), cross, n(row?.cross_visits), people === 0 ? 0 : Math.round((10000 * cross) / people) / 100];
}

afterAll(async () => {
  await client.close();
});

const checks = () => {
  it('visit:visitor_type splits visitors and sessions into New (first session) and Returning', async () => {
    const rows = standing();
    const expected = (returning: boolean) => {
      const group = rows.filter((r) => (r.session_number > 1) === returning);
      return [new Set(group.map((r) => r.user_key)).size, group.length];
    };
    // The traffic has both kinds.
    expect(expected(false)[1]).toBeGreaterThan(0);
    expect(expected(true)[1]).toBeGreaterThan(0);
    const answer = await ask({ site_id: SITE.id, metrics: ['visitors', 'visits'], date_range: RANGE, dimensions: ['visit:visitor_type'] });
    expect(Object.fromEntries(answer.results.map((r) => [r.dimensions[0], r.metrics]))).toEqual({ New: expected(false), Returning: expected(true) });
    // As a filter too (a click on a row of the panel).
    const returning = await ask({ site_id: SITE.id, metrics: ['visits'], date_range: RANGE, filters: [['is', 'visit:visitor_type', ['Returning']]] });
    expect(returning.results[0]?.metrics).toEqual([expected(true)[1]]);
  });

  it('cross-device share: identified people seen on two or more device types, as counted by hand and by plain SQL', async () => {
    const answer = await ask({ site_id: PEOPLE.id, metrics: PERSON_METRICS, date_range: PEOPLE_RANGE });
    expect(answer.results).toEqual([{ metrics: [8, 13, 3, 6, 37.5], dimensions: [] }]);
    expect(await crossDeviceBySql()).toEqual([8, 13, 3, 6, 37.5]);
  });

  it('cross-device share follows the filters of the page, as the same SQL filtered alike', async () => {
    const withoutMobile = await ask({ site_id: PEOPLE.id, metrics: PERSON_METRICS, date_range: PEOPLE_RANGE, filters: [['is_not', 'visit:device', ['mobile']]] });
    expect(withoutMobile.results[0]?.metrics).toEqual(await crossDeviceBySql("s.device_type != 'mobile'"));
    expect(withoutMobile.results[0]?.metrics).toEqual([7, 8, 0, 0, 0]);
    const oneDay = await ask({ site_id: PEOPLE.id, metrics: ['cross_device_share', 'identified_people'], date_range: ['2024-06-11', '2024-06-11'] });
    // On the 11th alone nobody has two device types: ann, bob, dan, eve (retracted: none), fay, hal.
    expect(oneDay.results[0]?.metrics).toEqual([0, 5]);
  });

  it('the shop’s generated traffic gives the same figures as the plain SQL (no one crosses devices there)', async () => {
    const answer = await ask({ site_id: SITE.id, metrics: ['identified_people', 'cross_device_people'], date_range: RANGE });
    const [row] = await queryRows<{ people: string; cross: string }>(
      client,
      `SELECT count() AS people, countIf(device_types >= 2) AS cross FROM (
         SELECT if(s.user_id != '', s.user_id, m.user_id) AS person, uniqExactIf(s.device_type, s.device_type != '') AS device_types
         FROM ${db.name}.sessions AS s FINAL
         LEFT JOIN ${db.name}.identity_map AS m ON s.site = m.site AND s.anonymous_id = m.anonymous_id
         WHERE s.sign = 1 AND s.site = {site:String} AND toDate(s.started_at, {tz:String}) BETWEEN {from:Date} AND {to:Date}
         GROUP BY person HAVING person != '')`,
      { site: SITE.id, tz: SITE.timezone, from: RANGE[0], to: RANGE[1] },
    );
    expect(Number(row?.people)).toBeGreaterThan(0);
    expect(answer.results[0]?.metrics).toEqual([Number(row?.people), Number(row?.cross)]);
  });
};

describe('before merges', checks);
describe('after merges', () => {
  beforeAll(async () => {
    await optimizeAll(client, db.name);
  });
  checks();
});
