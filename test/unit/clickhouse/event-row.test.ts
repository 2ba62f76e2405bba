/**
 * toEventRow: one `events` row per valid event, with the defaults of the event format applied and the
 * Kafka coordinates only when given.
 */
import { toEventRow } from '../../../src/clickhouse/event-row';
import { parseEvent } from '../../../src/events/parse-event';
import type { ValidEvent } from '../../../src/events/event-schema';

function valid(json: object): { valid: ValidEvent; raw: string } {
  const raw = JSON.stringify(json);
  const parsed = parseEvent(raw);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return { valid: parsed.valid, raw };
}

describe('toEventRow', () => {
  it('keeps the message as raw, with the stored columns (ids, time, type, channel, key event)', () => {
    const { valid: event, raw } = valid({
      event_id: 'e1',
      type: 'page_view',
      name: 'Pricing',
      timestamp: '2024-05-01T12:00:00.250+02:00',
      anonymous_id: 'anon-1',
      user_id: 'user-1',
      channel: 'app',
      key_event: true,
      page: { url: 'https://ex.com/pricing?x=1', path: '/pricing', title: 'Pricing', referrer: 'https://google.com/' },
      properties: { plan: 'pro', seats: 3 },
      unknown_field: 'ignored',
    });
    // The other fields (name, page, campaign, device, geo, properties) are ALIAS columns that
    // ClickHouse reads out of raw: test/integration/clickhouse-tables.int.test.ts checks them.
    expect(toEventRow(event, raw)).toEqual({
      site: 'default',
      event_id: 'e1',
      user_key: 'anon-1',
      anonymous_id: 'anon-1',
      user_id: 'user-1',
      timestamp: Date.parse('2024-05-01T10:00:00.250Z'),
      type: 'page_view',
      channel: 'app',
      key_event: 1,
      raw,
    });
  });

  it('keeps raw bytes as they are', () => {
    const { valid: event, raw } = valid({ event_id: 'e1', type: 't', timestamp: 1714557600000, user_id: 'u', page: { title: 'Café' } });
    const bytes = Buffer.from(raw);
    expect(toEventRow(event, bytes).raw).toBe(bytes);
  });

  it('fills absent and null values with the defaults of the event format', () => {
    const { valid: event, raw } = valid({
      event_id: 'e2',
      type: 'click',
      timestamp: 1714557600000,
      user_id: 'u-9',
      anonymous_id: null,
      channel: null,
      page: null,
      campaign: { source: null },
      properties: null,
    });
    const row = toEventRow(event, raw);
    expect(row).toMatchObject({
      user_key: 'u-9',
      anonymous_id: '',
      user_id: 'u-9',
      timestamp: 1714557600000,
      channel: 'web',
      key_event: 0,
    });
    expect(row).not.toHaveProperty('received_at');
    expect(row).not.toHaveProperty('kafka_offset');
  });

  it('uses user_id as the user key when anonymous_id is empty', () => {
    const { valid: event, raw } = valid({ event_id: 'e', type: 't', timestamp: 1714557600000, anonymous_id: '', user_id: 'u' });
    expect(toEventRow(event, raw).user_key).toBe('u');
  });

  it('adds the Kafka coordinates and receive time when given', () => {
    const { valid: event, raw } = valid({ event_id: 'e3', type: 'click', timestamp: 1714557600000, anonymous_id: 'a' });
    const row = toEventRow(event, raw, { topic: 'events', partition: 7, offset: '9007199254740993', receivedAtMs: 1714557601234 });
    expect(row).toMatchObject({
      received_at: 1714557601234,
      kafka_topic: 'events',
      kafka_partition: 7,
      // Beyond 2^53: kept as the exact decimal text kafkajs gives.
      kafka_offset: '9007199254740993',
    });
    expect(toEventRow(event, raw, { topic: 't', partition: 0, offset: 42, receivedAtMs: 0 }).kafka_offset).toBe('42');
  });
});

describe('the site column', () => {
  it("is the event's own site, else the one given (a topic's, a backfill's), else default", () => {
    const own = valid({ event_id: 'e1', type: 't', timestamp: 1714557600000, user_id: 'u', site: 'shop' });
    const none = valid({ event_id: 'e1', type: 't', timestamp: 1714557600000, user_id: 'u' });
    const source = { topic: 'shop-events', partition: 0, offset: '1', receivedAtMs: 1714557600000, site: 'from-topic' };
    expect(toEventRow(own.valid, own.raw, source).site).toBe('shop');
    expect(toEventRow(none.valid, none.raw, source).site).toBe('from-topic');
    expect(toEventRow(none.valid, none.raw, undefined, 'backfilled').site).toBe('backfilled');
    expect(toEventRow(none.valid, none.raw).site).toBe('default');
  });
});
