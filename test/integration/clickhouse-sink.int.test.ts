/**
 * ClickHouseSink writes RowBinary: the bytes must match the tables' column types exactly, or
 * ClickHouse rejects the insert (or, worse, reads shifted values). These tests compare our column
 * lists with the live schema and read written rows back, with the values that break naive
 * encoders: non-ASCII text, strings longer than 127 and 16,383 bytes (two- and three-byte
 * lengths), quotes, backslashes, newlines, and offsets beyond 2^53.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { EVENT_COLUMNS, toEventRow } from '../../src/clickhouse/event-row';
import { migrate } from '../../src/clickhouse/migrations';
import { ClickHouseSink, SESSION_TABLE_COLUMNS, sessionValues } from '../../src/clickhouse/session-sink';
import { parseEvent } from '../../src/events/parse-event';
import { useTestDatabase } from '../support';
import { queryRows, sessionRow, signed, testClient } from './clickhouse-fixtures';

const db = useTestDatabase('ch_sink');
let client: ClickHouseClient;
let sink: ClickHouseSink;

beforeAll(async () => {
  client = await testClient(db.name);
  await migrate(client, { database: db.name });
  sink = new ClickHouseSink(client, db.name);
});

afterAll(async () => {
  await client.close();
});

/** Column types as the server reports them; LowCardinality(String) travels as String. */
async function tableTypes(table: string): Promise<Map<string, string>> {
  const rows = await queryRows<{ name: string; type: string }>(client, `SELECT name, type FROM system.columns WHERE database = {d:String} AND table = {t:String}`, {
    d: db.name,
    t: table,
  });
  return new Map(rows.map((r) => [r.name, r.type.replace(/^LowCardinality\((.*)\)$/, '$1')]));
}

const awkward = {
  text: 'Grüße, 東京 🚀 "quoted" \\back\\slash\\ tab\there\nnewline',
  long: 'é'.repeat(100), // 200 bytes: a two-byte length
  huge: 'x'.repeat(20_000), // a three-byte length
};

describe('ClickHouseSink (RowBinary)', () => {
  it('sends every column of sessions and events with the type the table has', async () => {
    for (const [table, columns] of [
      ['sessions', SESSION_TABLE_COLUMNS],
      ['events', EVENT_COLUMNS],
    ] as const) {
      const types = await tableTypes(table);
      for (const column of columns) expect([column.name, types.get(column.name)]).toEqual([column.name, column.type]);
    }
    // Every sessions column is written (none left to a default).
    expect(SESSION_TABLE_COLUMNS.map((c) => c.name).sort()).toEqual([...(await tableTypes('sessions')).keys()].sort());
  });

  it('writes session rows that read back field for field', async () => {
    const row = signed(
      sessionRow({
        user_key: awkward.text,
        started_at: '2024-05-01T10:00:00.123Z',
        duration_ms: 4_294_967_296 + 5, // beyond UInt32
        entry_page: awkward.long,
        exit_page: awkward.huge,
        campaign: 'ünïcode',
        session_number: 4_000_000_000,
        version: 2 ** 53 - 1,
        is_open: 0,
      }),
      -1,
    );
    await sink.insertSessions([sessionValues(row)], 'sink-sessions-1');
    const [back] = await queryRows<Record<string, unknown>>(
      client,
      `SELECT * EXCEPT (started_at, ended_at), toUnixTimestamp64Milli(started_at) AS s, toUnixTimestamp64Milli(ended_at) AS e
       FROM ${db.name}.sessions WHERE session_id = {id:String}`,
      { id: row.session_id },
    );
    const { started_at, ended_at, ...rest } = row;
    expect(back).toEqual({
      ...rest,
      duration_ms: String(row.duration_ms),
      version: String(row.version),
      s: String(Date.parse(started_at)),
      e: String(Date.parse(ended_at)),
    });
  });

  it('writes event rows that read back field for field, offsets beyond 2^53 included', async () => {
    const raw = JSON.stringify({
      event_id: 'sink-ev-1',
      type: 'page_view',
      timestamp: '2024-05-01T12:00:00.5+02:00',
      anonymous_id: awkward.text,
      page: { url: `https://shop.example/${awkward.long}`, title: awkward.huge },
      properties: { q: awkward.text },
      geo: { country: 'fr', city: 'Zürich' },
    });
    const parsed = parseEvent(raw);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const row = toEventRow(parsed.valid, raw, { topic: 'events', partition: 2_000_000_000, offset: '9007199254740993', receivedAtMs: 1714557601234 });
    await sink.insertEvents([row], 'sink-events-1');
    const [back] = await queryRows<Record<string, unknown>>(
      client,
      `SELECT * EXCEPT (timestamp, received_at), toUnixTimestamp64Milli(timestamp) AS ts, toUnixTimestamp64Milli(received_at) AS received
       FROM ${db.name}.events WHERE event_id = 'sink-ev-1'`,
    );
    const { timestamp, received_at, ...rest } = row;
    expect(back).toEqual({ ...rest, ts: String(timestamp), received: String(received_at) });
    expect(back?.kafka_offset).toBe('9007199254740993');
    // The fields read out of raw (ALIAS columns) come back as sent, awkward text included.
    const [fields] = await queryRows<Record<string, unknown>>(client, `SELECT page_url, page_title, properties, geo_country, geo_city FROM ${db.name}.events WHERE event_id = 'sink-ev-1'`);
    expect(fields).toEqual({
      page_url: `https://shop.example/${awkward.long}`,
      page_title: awkward.huge,
      properties: JSON.stringify({ q: awkward.text }),
      geo_country: 'FR',
      geo_city: 'Zürich',
    });
  });

  it('writes rows whose last bytes look like line breaks (offset 2570 is 0a 0a 00 …)', async () => {
    const rows = [2570, 10, 2_570_000].map((offset) => {
      const raw = JSON.stringify({ event_id: `sink-nl-${offset}`, type: 'page_view', timestamp: 1714557600000, user_id: 'nl' });
      const parsed = parseEvent(raw);
      if (!parsed.ok) throw new Error(parsed.error.message);
      return toEventRow(parsed.valid, raw, { topic: 'events', partition: 10, offset: String(offset), receivedAtMs: 1714557601234 });
    });
    await sink.insertEvents(rows, 'sink-events-nl');
    const back = await queryRows<{ kafka_offset: string }>(client, `SELECT kafka_offset FROM ${db.name}.events WHERE user_key = 'nl' ORDER BY kafka_offset`);
    expect(back.map((r) => r.kafka_offset)).toEqual(['10', '2570', '2570000']);
  });

  it('leaves the Kafka columns to their defaults for rows without a source', async () => {
    const raw = JSON.stringify({ event_id: 'sink-ev-2', type: 'track', name: 'x', timestamp: 1714557600000, user_id: 'imported' });
    const parsed = parseEvent(raw);
    if (!parsed.ok) throw new Error(parsed.error.message);
    await sink.insertEvents([toEventRow(parsed.valid, raw)], 'sink-events-2');
    const [back] = await queryRows<Record<string, unknown>>(client, `SELECT kafka_topic, kafka_partition, kafka_offset FROM ${db.name}.events WHERE event_id = 'sink-ev-2'`);
    expect(back).toEqual({ kafka_topic: '', kafka_partition: -1, kafka_offset: '-1' });
  });

  it('drops a retried insert with the same deduplication token', async () => {
    const row = signed(sessionRow({ user_key: 'sink-retry', started_at: '2024-05-02T10:00:00.000Z' }), 1);
    await sink.insertSessions([sessionValues(row)], 'sink-retry-token');
    await sink.insertSessions([sessionValues(row)], 'sink-retry-token');
    const [count] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${db.name}.sessions WHERE user_key = 'sink-retry'`);
    expect(count?.n).toBe('1');
  });
});
