/**
 * planBatch with messages of a Segment topic (tagged `segment` by the worker): they are mapped
 * to our own events, the `events` sink gets the mapped event as the raw text, invalid ones are
 * rejected with the reason (for the dead-letter topic), and untagged messages still parse as
 * our own format.
 */
import { segmentToEvent } from '../../../src/events/segment';
import { planBatch, type IncomingMessage } from '../../../src/worker/batch-plan';

const segment = { keyEvents: new Set(['Order Completed']) };
const page = { type: 'page', messageId: 'm-1', anonymousId: 'a-1', timestamp: '2024-05-01T12:00:00Z', properties: { path: '/pricing' } };
const order = { type: 'track', event: 'Order Completed', messageId: 'm-2', anonymousId: 'a-1', timestamp: '2024-05-01T12:01:00Z' };
const own = { event_id: 'e-1', type: 'page_view', anonymous_id: 'a-2', timestamp: '2024-05-01T12:00:00Z' };

function message(offset: number, value: unknown, tagged: boolean): IncomingMessage {
  return { offset: String(offset), key: null, value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), ...(tagged ? { segment } : {}) };
}

describe('planBatch on a Segment topic', () => {
  it('maps tagged messages and hands the mapped event, as JSON, to the sink', () => {
    const sunk: Array<{ raw: string | Uint8Array; ts: number; offset: string }> = [];
    const plan = planBatch([message(0, page, true), message(1, order, true)], -Infinity, Infinity, (_fields, ts, raw, offset) => sunk.push({ raw, ts, offset }));
    expect(plan.rejected).toEqual([]);
    const planned = plan.byUser.get('a-1') ?? [];
    expect(planned.map((p) => [p.event.eventId, p.event.isView, p.event.location, p.event.keyEvent])).toEqual([
      ['m-1', true, '/pricing', false],
      ['m-2', false, '', true],
    ]);
    const expected = [page, order].map((m) => segmentToEvent(m, segment));
    // The mapped event, as text (not the Segment message's bytes).
    expect(sunk.every((s) => typeof s.raw === 'string')).toBe(true);
    expect(sunk.map((s) => JSON.parse(s.raw as string))).toEqual(expected.map((r) => (r.ok ? r.event : null)));
    expect(sunk.map((s) => s.ts)).toEqual([Date.UTC(2024, 4, 1, 12), Date.UTC(2024, 4, 1, 12, 1)]);
    expect(plan.watermark).toBe(Date.UTC(2024, 4, 1, 12, 1));
  });

  it('rejects invalid Segment messages with the reason, and own-format events on a Segment topic', () => {
    const plan = planBatch(
      [message(0, { ...order, event: undefined }, true), message(1, own, true), message(2, '{oops', true), message(3, page, true)],
      -Infinity,
      Infinity,
    );
    expect(plan.rejected.map((r) => [r.message.offset, r.error.message])).toEqual([
      ['0', 'event: is required for a track call'],
      ['1', expect.stringMatching(/^type: expected one of track, page/)],
      ['2', expect.stringMatching(/^not valid JSON/)],
    ]);
    expect([...plan.byUser.keys()]).toEqual(['a-1']);
  });

  it('parses untagged messages as our own format, and rejects Segment messages there', () => {
    const sunk: Array<string | Uint8Array> = [];
    const plan = planBatch([message(0, own, false), message(1, page, false)], -Infinity, Infinity, (_f, _ts, raw) => sunk.push(raw));
    // Our own format: the message's bytes themselves, to be copied into the events row.
    expect(sunk).toEqual([Buffer.from(JSON.stringify(own))]);
    expect(plan.rejected.map((r) => r.error.field)).toEqual(['event_id']);
  });
});
