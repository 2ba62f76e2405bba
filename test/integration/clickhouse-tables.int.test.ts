/**
 * The tables of schemas/clickhouse behave as the worker relies on: ISO times parse, cancel rows
 * collapse their originals (under FINAL and in merges), a retried insert with the same
 * deduplication token is dropped — in `sessions` and in the roll-ups fed from it — and a
 * replayed batch of events adds no duplicates after FINAL.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { toEventRow, type EventRow } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { SESSION_FIELDS, type SessionRow } from '../../src/engine/session-row';
import { parseEvent } from '../../src/events/parse-event';
import { useTestDatabase } from '../support';
import { insertEventRows, insertRows, optimizeAll, queryRows, sessionRow, signed, testClient } from './clickhouse-fixtures';

const db = useTestDatabase('ch_tables');
let client: ClickHouseClient;

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
});

afterAll(async () => {
  await client.close();
});

/** Whether a session row carries its site (the table has it as its first column either way). */
const ROW_HAS_SITE = (SESSION_FIELDS as readonly string[]).includes('site');

/** Current sessions, with times as ISO strings like the rows we write. */
async function currentSessions(userKey: string): Promise<SessionRow[]> {
  return queryRows<Record<string, unknown>>(
    client,
    `SELECT * EXCEPT (${ROW_HAS_SITE ? 'sign' : 'sign, site'}) FROM ${db.name}.sessions FINAL WHERE sign = 1 AND user_key = {u:String} ORDER BY started_at`,
    { u: userKey },
  ).then((rows) => rows.map(normalise));
}

/** ClickHouse returns DateTime64 as "2024-05-01 10:00:00.000" and 64-bit integers quoted. */
function normalise(row: Record<string, unknown>): SessionRow {
  const out: Record<string, unknown> = { ...row };
  for (const field of ['started_at', 'ended_at']) out[field] = `${String(row[field]).replace(' ', 'T')}Z`;
  for (const field of ['duration_ms', 'version']) out[field] = Number(row[field]);
  return out as unknown as SessionRow;
}

async function countRows(table: string, where = '1'): Promise<number> {
  const [row] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${db.name}.${table} WHERE ${where}`);
  return Number(row?.n);
}

describe('sessions', () => {
  it('has the session fields in order, then is_open, sign, version', async () => {
    const columns = await queryRows<{ name: string; type: string }>(
      client,
      "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'sessions' ORDER BY position",
      { db: db.name },
    );
    expect(columns.map((c) => c.name)).toEqual(['site', ...(SESSION_FIELDS as readonly string[]).filter((f) => f !== 'site'), 'is_open', 'sign', 'version']);
    expect(columns.find((c) => c.name === 'started_at')?.type).toBe("DateTime64(3, 'UTC')");
    expect(columns.find((c) => c.name === 'country')?.type).toBe('LowCardinality(String)');
  });

  it('parses the ISO-8601 times of our rows to the millisecond', async () => {
    const row = sessionRow({ user_key: 'iso', started_at: '2024-05-01T23:59:59.999Z', duration_ms: 1 });
    await insertRows(client, `${db.name}.sessions`, [signed(row, 1)]);
    const [stored] = await queryRows<{ s: string; e: string; day: string }>(
      client,
      `SELECT toUnixTimestamp64Milli(started_at) AS s, toUnixTimestamp64Milli(ended_at) AS e, toString(toDate(started_at)) AS day
       FROM ${db.name}.sessions WHERE user_key = 'iso'`,
    );
    expect(stored).toEqual({ s: String(Date.parse('2024-05-01T23:59:59.999Z')), e: String(Date.parse('2024-05-02T00:00:00.000Z')), day: '2024-05-01' });
  });

  it('collapses cancelled states under FINAL and in merges, whatever order the rows arrive in', async () => {
    const user = 'collapse';
    const startA = sessionRow({ user_key: user, started_at: '2024-05-02T10:00:00.000Z' });
    const endA = { ...startA, is_open: 0 as const, ended_at: '2024-05-02T10:05:00.000Z', duration_ms: 300_000, events: 4, views: 3, is_engaged: 1 as const, is_bounce: 0 as const, version: 2 };
    const startB = sessionRow({ user_key: user, started_at: '2024-05-02T12:00:00.000Z', session_number: 2, previous_session_id: startA.session_id });
    const startC = sessionRow({ user_key: user, started_at: '2024-05-02T12:40:00.000Z', session_number: 3, previous_session_id: startB.session_id });
    // C merged into B by a late event: C retracted, B rewritten with C's events.
    const mergedB = { ...startB, ended_at: '2024-05-02T12:40:00.000Z', duration_ms: 2_400_000, events: 3, views: 3, is_engaged: 1 as const, is_bounce: 0 as const, version: 2 };

    await insertRows(client, `${db.name}.sessions`, [signed(startA, 1), signed(startB, 1)], 'collapse-1');
    // The cancel of C arrives before C itself: collapsing does not depend on order.
    await insertRows(client, `${db.name}.sessions`, [signed(startA, -1), signed(endA, 1), signed(startC, -1)], 'collapse-2');
    await insertRows(client, `${db.name}.sessions`, [signed(startC, 1), signed(startB, -1), signed(mergedB, 1)], 'collapse-3');

    expect(await currentSessions(user)).toEqual([endA, mergedB]);
    const [sums] = await queryRows<{ sessions: string; views: string }>(
      client,
      `SELECT sum(sign) AS sessions, sum(sign * views) AS views FROM ${db.name}.sessions WHERE user_key = {u:String}`,
      { u: user },
    );
    expect(sums).toEqual({ sessions: '2', views: '6' });

    await client.command({ query: `OPTIMIZE TABLE ${db.name}.sessions FINAL` });
    // Physically collapsed: only the two current states remain.
    expect(await countRows('sessions', `user_key = '${user}'`)).toBe(2);
    expect(await currentSessions(user)).toEqual([endA, mergedB]);
  });

  it('drops a retried insert with the same deduplication token, in sessions and in the roll-ups', async () => {
    const user = 'dedup';
    const rows = [0, 1, 2].map((i) =>
      signed(sessionRow({ user_key: user, started_at: `2024-05-03T0${i}:00:00.000Z`, channel: 'app', session_number: i + 1 }), 1),
    );
    const rollup = async () =>
      queryRows<{ sessions: string; users: string }>(
        client,
        `SELECT
           (SELECT sum(sessions) FROM ${db.name}.sessions_daily WHERE day = '2024-05-03' AND channel = 'app') AS sessions,
           (SELECT sum(sessions) FROM ${db.name}.users_daily WHERE day = '2024-05-03' AND user_key = {u:String}) AS users`,
        { u: user },
      );
    await insertRows(client, `${db.name}.sessions`, rows, 'flush-p0-seq-41');
    await insertRows(client, `${db.name}.sessions`, rows, 'flush-p0-seq-41');
    await insertRows(client, `${db.name}.sessions`, rows.slice(0, 1), 'flush-p0-seq-41');
    expect(await countRows('sessions', `user_key = '${user}'`)).toBe(3);
    expect(await rollup()).toEqual([{ sessions: '3', users: '3' }]);

    // Same rows under a new token are a new insert: the token, not the content, decides.
    await insertRows(client, `${db.name}.sessions`, rows.slice(0, 1), 'flush-p0-seq-42');
    expect(await countRows('sessions', `user_key = '${user}'`)).toBe(4);
    expect(await rollup()).toEqual([{ sessions: '4', users: '4' }]);
  });
});

describe('events', () => {
  function eventRow(json: object, offset: number) {
    const raw = JSON.stringify(json);
    const parsed = parseEvent(raw);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return toEventRow(parsed.valid, raw, { topic: 'events', partition: 3, offset, receivedAtMs: Date.parse('2024-05-01T10:00:05.000Z') });
  }

  const batch = [
    eventRow({ event_id: 'ev-1', type: 'page_view', timestamp: '2024-05-01T10:00:00.000Z', anonymous_id: 'visitor', page: { path: '/' }, properties: { a: [1, 2] } }, 100),
    eventRow({ event_id: 'ev-2', type: 'signup', timestamp: 1714557660000, anonymous_id: 'visitor', user_id: 'u-1', key_event: true, geo: { country: 'fr' } }, 101),
  ];

  it('stores typed events, Kafka coordinates included, and a replayed batch adds nothing after FINAL', async () => {
    await insertEventRows(client, db.name, batch, 'events-p3-100-101');
    // A replay after a crash, under a different token (say the batch was cut differently).
    await insertEventRows(client, db.name, [...batch].reverse(), 'events-p3-replay');
    const rows = await queryRows<Record<string, unknown>>(
      client,
      `SELECT event_id, user_key, user_id, toUnixTimestamp64Milli(timestamp) AS ts, type, key_event, geo_country,
              JSONExtract(properties, 'a', 'Array(UInt8)') AS a, raw, kafka_topic, kafka_partition, kafka_offset,
              toString(received_at) AS received_at
       FROM ${db.name}.events FINAL WHERE user_key = 'visitor' ORDER BY timestamp`,
    );
    expect(rows).toEqual([
      expect.objectContaining({ event_id: 'ev-1', ts: '1714557600000', type: 'page_view', key_event: 0, a: [1, 2], kafka_offset: '100' }),
      expect.objectContaining({ event_id: 'ev-2', user_id: 'u-1', ts: '1714557660000', key_event: 1, geo_country: 'FR', kafka_topic: 'events', kafka_partition: 3, kafka_offset: '101', received_at: '2024-05-01 10:00:05.000' }),
    ]);
    expect(JSON.parse(String(rows[1]?.raw))).toMatchObject({ event_id: 'ev-2', geo: { country: 'fr' } });
    await optimizeAll(client, db.name);
    expect(await countRows('events', "user_key = 'visitor'")).toBe(2);
  });

  it('reads the event\'s other fields out of raw, with the defaults of the event format', async () => {
    const full = {
      event_id: 'al-1',
      type: 'page_view',
      name: 'Pricing "plans"',
      timestamp: 1714557600000,
      anonymous_id: 'alias-visitor',
      channel: 'app',
      page: { url: 'https://ex.com/pricing?x=1', path: '/pricing', title: 'Prix — café', referrer: 'https://google.com/' },
      campaign: { source: 'newsletter', medium: 'email', name: 'may', term: 't', content: 'c' },
      device: { type: 'mobile', os: 'iOS', browser: 'Safari', app_version: '1.2.3' },
      geo: { country: 'de', region: 'BE', city: 'Berlin' },
      properties: { plan: 'pro', seats: 3, nested: { list: [1, 'é'] } },
    };
    const sparse = { event_id: 'al-2', type: 'click', timestamp: 1714557660000, anonymous_id: 'alias-visitor', page: null, campaign: { source: null }, properties: null };
    // One row from the message's bytes (as the worker writes), one from its text.
    const rows = [eventRow(full, 200), eventRow(sparse, 201)];
    rows[0] = { ...(rows[0] as EventRow), raw: Buffer.from(JSON.stringify(full)) };
    await insertEventRows(client, db.name, rows);
    const read = await queryRows<Record<string, unknown>>(
      client,
      `SELECT name, page_url, page_path, page_title, page_referrer, campaign_source, campaign_medium, campaign_name, campaign_term,
              campaign_content, device_type, device_os, device_browser, device_app_version, geo_country, geo_region, geo_city, properties
       FROM ${db.name}.events WHERE user_key = 'alias-visitor' ORDER BY timestamp`,
    );
    expect(read[0]).toEqual({
      name: 'Pricing "plans"',
      page_url: 'https://ex.com/pricing?x=1',
      page_path: '/pricing',
      page_title: 'Prix — café',
      page_referrer: 'https://google.com/',
      campaign_source: 'newsletter',
      campaign_medium: 'email',
      campaign_name: 'may',
      campaign_term: 't',
      campaign_content: 'c',
      device_type: 'mobile',
      device_os: 'iOS',
      device_browser: 'Safari',
      device_app_version: '1.2.3',
      geo_country: 'DE',
      geo_region: 'BE',
      geo_city: 'Berlin',
      properties: JSON.stringify(full.properties),
    });
    expect(read[1]).toEqual(expect.objectContaining({ name: '', page_url: '', campaign_source: '', device_type: '', geo_country: '', properties: '{}' }));
  });

  it('refuses an insert that names a column read from raw', async () => {
    await expect(
      client.command({ query: `INSERT INTO ${db.name}.events (event_id, user_key, timestamp, type, page_url) VALUES ('x', 'x', now64(3), 't', '/')` }),
    ).rejects.toThrow(/ALIAS|page_url/);
  });

  it('fills the Kafka columns and received_at with defaults when a writer omits them', async () => {
    const raw = JSON.stringify({ event_id: 'imp-1', type: 'page_view', timestamp: 1714557600000, user_id: 'imported' });
    const parsed = parseEvent(raw);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const before = Date.now();
    await insertEventRows(client, db.name, [toEventRow(parsed.valid, raw)]);
    const [row] = await queryRows<{ kafka_topic: string; kafka_partition: number; kafka_offset: string; received: string }>(
      client,
      `SELECT kafka_topic, kafka_partition, kafka_offset, toUnixTimestamp64Milli(received_at) AS received
       FROM ${db.name}.events WHERE event_id = 'imp-1'`,
    );
    expect(row).toMatchObject({ kafka_topic: '', kafka_partition: -1, kafka_offset: '-1' });
    expect(Number(row?.received)).toBeGreaterThanOrEqual(before - 60_000);
  });
});
