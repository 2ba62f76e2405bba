/**
 * The outbox keeps session rows as the body of their insert (RowBinary). Entries written by a
 * worker of an earlier release hold JSON (rows as arrays, or as objects from older still): they
 * must insert exactly the same bytes, so an upgrade mid-stream loses or changes nothing.
 */
import { encodeSessionRows, outboxBody, sessionValues, signedRows } from '../../../src/clickhouse/session-sink';
import { newKeyState, applyEvent, reconcile } from '../../../src/engine/engine';
import { parseSessionEvent } from '../../../src/events/parse-event';

function rows() {
  const state = newKeyState('anon-1');
  const engine = { timeoutMs: 30 * 60_000, latenessMs: 60 * 60_000 };
  for (const [id, ts] of [['e1', 1714557600000], ['e2', 1714557660000]] as const) {
    const event = parseSessionEvent(JSON.stringify({ event_id: id, type: 'page_view', timestamp: ts, anonymous_id: 'anon-1', page: { path: '/café' }, geo: { city: 'São Paulo' } }));
    if (event instanceof Error) throw event;
    applyEvent(state, event, engine, ts);
  }
  const first = reconcile(state, engine, 1714557600000);
  const later = reconcile(state, engine, 1714557600000 + 3 * 3_600_000);
  return signedRows([...first, ...later]);
}

describe('outbox payloads', () => {
  const signed = rows();
  const body = encodeSessionRows(signed.map(sessionValues));

  it('are the rows as their insert body, taken as they are', () => {
    expect(signed.map((r) => r.sign)).toEqual([1, -1, 1]);
    expect(body[0]).toBe(32); // a session id's length, never "["
    expect(outboxBody(body)).toBe(body);
  });

  it('convert JSON entries of earlier releases (arrays or objects) to the same bytes', () => {
    expect(outboxBody(Buffer.from(JSON.stringify(signed.map(sessionValues)))).equals(body)).toBe(true);
    expect(outboxBody(Buffer.from(JSON.stringify(signed))).equals(body)).toBe(true);
    expect(outboxBody(Buffer.from('[]'))).toHaveLength(0);
  });
});
