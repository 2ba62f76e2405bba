/**
 * The outbox keeps session rows as the body of their insert (RowBinary, after a byte saying its
 * columns include `site`). Entries written by a worker of an earlier release hold RowBinary
 * without `site`, or JSON (rows as arrays, or as objects from older still): they must insert
 * the same rows, of the site `default`, so an upgrade mid-stream loses or changes nothing.
 */
import { ClickHouseSink, encodeSessionRows, outboxBody, SESSION_COLUMNS, sessionValues, signedRows, type SessionValues } from '../../../src/clickhouse/session-sink';
import { RowBinaryEncoder } from '../../../src/clickhouse/row-binary';
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

/** What the sink sends for a body: the statement's column list and the bytes. */
async function sent(body: Buffer): Promise<{ query: string; bytes: Buffer }> {
  let query = '';
  let bytes = Buffer.alloc(0);
  const client = {
    exec: async ({ query: q, values }: { query: string; values: AsyncIterable<Buffer> }) => {
      query = q;
      for await (const chunk of values) bytes = Buffer.concat([bytes, chunk]);
      const { Readable } = await import('node:stream');
      return { stream: Readable.from([]), http_status_code: 200 };
    },
  };
  await new ClickHouseSink(client as never, 'db').insertSessions(body, 'token');
  return { query, bytes };
}

describe('outbox payloads', () => {
  const signed = rows();
  const body = encodeSessionRows(signed.map(sessionValues));
  const columnsBeforeSites = SESSION_COLUMNS.filter((c) => c !== 'site');
  const beforeSites = new RowBinaryEncoder(
    'sessions',
    columnsBeforeSites.map((name) => ({ name, type: name === 'started_at' || name === 'ended_at' ? ("DateTime64(3, 'UTC')" as const) : typeOf(name) })),
  );
  const legacyArrays: SessionValues[] = signed.map((row) => columnsBeforeSites.map((c) => row[c]));

  it('are the rows as their insert body after a format byte, taken as they are', () => {
    expect(signed.map((r) => r.sign)).toEqual([1, -1, 1]);
    expect(signed.every((r) => r.site === 'default')).toBe(true);
    expect(body[0]).toBe(1); // never a session id's length (32) nor "["
    expect(outboxBody(body)).toBe(body);
  });

  it('insert with the site column, without the format byte', async () => {
    const { query, bytes } = await sent(body);
    expect(query).toMatch(/^INSERT INTO db\.sessions \(site, session_id, user_key, /);
    expect(bytes.equals(body.subarray(1))).toBe(true);
  });

  it('of a worker from before sites (RowBinary without site) insert as they are, leaving site to the table default', async () => {
    const legacy = beforeSites.encodeArrays(legacyArrays);
    expect(legacy[0]).toBe(32);
    expect(outboxBody(legacy)).toBe(legacy);
    const { query, bytes } = await sent(legacy);
    expect(query).toMatch(/^INSERT INTO db\.sessions \(session_id, user_key, /);
    expect(bytes.equals(legacy)).toBe(true);
  });

  it('convert JSON entries of earlier releases (arrays or objects, without site) to the same bytes', () => {
    expect(outboxBody(Buffer.from(JSON.stringify(legacyArrays))).equals(body)).toBe(true);
    const objects = signed.map(({ site: _site, ...row }) => row);
    expect(outboxBody(Buffer.from(JSON.stringify(objects))).equals(body)).toBe(true);
    expect(outboxBody(Buffer.from(JSON.stringify(signed.map(sessionValues)))).equals(body)).toBe(true);
    expect(outboxBody(Buffer.from('[]'))).toHaveLength(1);
  });
});

function typeOf(name: string): 'String' | 'UInt8' | 'Int8' | 'UInt32' | 'UInt64' {
  if (['duration_ms', 'version'].includes(name)) return 'UInt64';
  if (['events', 'views', 'session_number'].includes(name)) return 'UInt32';
  if (['is_engaged', 'is_bounce', 'is_open'].includes(name)) return 'UInt8';
  if (name === 'sign') return 'Int8';
  return 'String';
}
