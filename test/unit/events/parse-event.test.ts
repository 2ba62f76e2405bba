/**
 * Event validation per the event format: every rule, and an error that names the field and the reason.
 */
import { InvalidEventError } from '../../../src/errors';
import { MAX_EVENT_BYTES, parseEvent, validateEvent, type ParsedEvent } from '../../../src/events/parse-event';

const VALID = {
  event_id: 'evt-1',
  type: 'page_view',
  timestamp: '2024-05-01T12:00:00.000Z',
  anonymous_id: 'anon-1',
};

function parse(event: Record<string, unknown>): ParsedEvent {
  return parseEvent(JSON.stringify(event));
}

function accepted(event: Record<string, unknown>) {
  const result = parse(event);
  if (!result.ok) throw new Error(`expected the event to be accepted, got ${result.error.message}`);
  return result;
}

/** The event is rejected and the error names `field`; returns the reason. */
function rejectedAt(event: Record<string, unknown> | string, field: string): string {
  const result = typeof event === 'string' ? parseEvent(event) : parse(event);
  if (result.ok) throw new Error(`expected a rejection at "${field}", but the event was accepted`);
  expect(result.error).toBeInstanceOf(InvalidEventError);
  expect(result.error.code).toBe('INVALID_EVENT');
  expect(result.error.field).toBe(field);
  expect(result.error.reason).not.toBe('');
  expect(result.error.message).toBe(field ? `${field}: ${result.error.reason}` : result.error.reason);
  return result.error.reason;
}

const without = (field: string): Record<string, unknown> => {
  const copy: Record<string, unknown> = { ...VALID };
  delete copy[field];
  return copy;
};

describe('a valid event', () => {
  it('is accepted and normalised for the engine', () => {
    const { event } = accepted(VALID);
    expect(event).toMatchObject({
      userKey: 'anon-1',
      eventId: 'evt-1',
      ts: Date.UTC(2024, 4, 1, 12),
      isView: true,
      keyEvent: false,
      channel: 'web',
    });
  });

  it('accepts a Buffer as well as a string', () => {
    expect(parseEvent(Buffer.from(JSON.stringify(VALID), 'utf8')).ok).toBe(true);
  });

  it('accepts every optional field', () => {
    accepted({
      ...VALID,
      name: 'Home',
      user_id: 'user-1',
      channel: 'app',
      key_event: true,
      page: { url: 'https://shop.example/a', path: '/a', title: 'A', referrer: 'https://google.com/' },
      campaign: { source: 's', medium: 'm', name: 'n', term: 't', content: 'c' },
      device: { type: 'mobile', os: 'iOS', browser: 'Safari', app_version: '1.2.3' },
      geo: { country: 'DE', region: 'BY', city: 'Munich' },
      properties: { anything: [1, { nested: true }], more: null },
    });
  });

  it('treats null optional fields as absent (producer convenience beyond the event format)', () => {
    const { event } = accepted({ ...VALID, name: null, user_id: null, channel: null, page: null, geo: null, key_event: null });
    expect(event.channel).toBe('web');
    expect(event.keyEvent).toBe(false);
  });
});

describe('required fields', () => {
  it.each(['event_id', 'type', 'timestamp'])('%s is required', (field) => {
    rejectedAt(without(field), field);
  });

  it('event_id and type say "is required" when missing', () => {
    expect(rejectedAt(without('event_id'), 'event_id')).toBe('is required');
    expect(rejectedAt(without('type'), 'type')).toBe('is required');
  });

  it.each([
    ['event_id', 42],
    ['type', true],
    ['timestamp', { at: 1 }],
    ['anonymous_id', 7],
    ['user_id', ['u']],
    ['name', 1],
    ['key_event', 'true'],
    ['page', 'https://x.example/'],
    ['page.url', 5],
    ['campaign', []],
    ['device.os', false],
    ['properties', 'free text'],
    ['properties', [1, 2]],
  ])('%s of the wrong type (%p) is rejected', (field, value) => {
    const [top, nested] = field.split('.') as [string, string | undefined];
    const event = nested ? { ...VALID, [top]: { [nested]: value } } : { ...VALID, [top]: value };
    rejectedAt(event, field);
  });
});

describe('lengths', () => {
  it('event_id: 1 to 128 characters', () => {
    rejectedAt({ ...VALID, event_id: '' }, 'event_id');
    accepted({ ...VALID, event_id: 'x' });
    accepted({ ...VALID, event_id: 'x'.repeat(128) });
    rejectedAt({ ...VALID, event_id: 'x'.repeat(129) }, 'event_id');
  });

  it('type: 1 to 64 characters', () => {
    rejectedAt({ ...VALID, type: '' }, 'type');
    accepted({ ...VALID, type: 't' });
    accepted({ ...VALID, type: 't'.repeat(64) });
    rejectedAt({ ...VALID, type: 't'.repeat(65) }, 'type');
  });

  it('name: at most 256 characters', () => {
    accepted({ ...VALID, name: '' });
    accepted({ ...VALID, name: 'n'.repeat(256) });
    rejectedAt({ ...VALID, name: 'n'.repeat(257) }, 'name');
  });

  it.each(['anonymous_id', 'user_id'])('%s: at most 128 characters', (field) => {
    accepted({ ...VALID, [field]: 'i'.repeat(128) });
    rejectedAt({ ...VALID, [field]: 'i'.repeat(129) }, field);
  });
});

describe('timestamp', () => {
  const tsOf = (timestamp: unknown) => accepted({ ...VALID, timestamp }).event.ts;

  it('accepts ISO-8601 with Z', () => {
    expect(tsOf('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(tsOf('2024-05-01T12:00:00.5Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 500));
    expect(tsOf('2024-05-01T12:00:00.123Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
  });

  it('accepts ISO-8601 with an offset and converts it to UTC', () => {
    expect(tsOf('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(tsOf('2024-05-01T06:30:00.250-05:30')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 250));
    expect(tsOf('2024-05-01T14:00:00+0200')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(tsOf('2024-05-01T00:00:00+00:00')).toBe(Date.UTC(2024, 4, 1));
  });

  it('accepts epoch milliseconds', () => {
    expect(tsOf(1714564800000)).toBe(1714564800000);
  });

  it('rejects an ISO date-time without a zone', () => {
    rejectedAt({ ...VALID, timestamp: '2024-05-01T12:00:00' }, 'timestamp');
    rejectedAt({ ...VALID, timestamp: '2024-05-01T12:00:00.000' }, 'timestamp');
  });

  it.each([
    ['a date only', '2024-05-01'],
    ['free text', 'yesterday'],
    ['an empty string', ''],
    ['epoch milliseconds as a string', '1714564800000'],
    ['fractional milliseconds', 1714564800000.5],
    ['an impossible day', '2023-02-29T12:00:00Z'],
    ['an impossible month', '2024-13-01T12:00:00Z'],
    ['an impossible hour', '2024-05-01T24:00:00Z'],
    ['null', null],
  ])('rejects %s', (_what, timestamp) => {
    rejectedAt({ ...VALID, timestamp }, 'timestamp');
  });

  it('accepts a leap day', () => {
    expect(tsOf('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
  });

  it('accepts the first and last instants of 2000–2099', () => {
    expect(tsOf('2000-01-01T00:00:00.000Z')).toBe(Date.UTC(2000, 0, 1));
    expect(tsOf('2099-12-31T23:59:59.999Z')).toBe(Date.UTC(2100, 0, 1) - 1);
    expect(tsOf(Date.UTC(2000, 0, 1))).toBe(Date.UTC(2000, 0, 1));
    expect(tsOf(Date.UTC(2100, 0, 1) - 1)).toBe(Date.UTC(2100, 0, 1) - 1);
  });

  it('rejects the years 1999 and 2100, naming the range', () => {
    expect(rejectedAt({ ...VALID, timestamp: '1999-12-31T23:59:59.999Z' }, 'timestamp')).toMatch(/2000/);
    rejectedAt({ ...VALID, timestamp: '2100-01-01T00:00:00.000Z' }, 'timestamp');
    rejectedAt({ ...VALID, timestamp: Date.UTC(2000, 0, 1) - 1 }, 'timestamp');
    rejectedAt({ ...VALID, timestamp: Date.UTC(2100, 0, 1) }, 'timestamp');
    rejectedAt({ ...VALID, timestamp: 0 }, 'timestamp');
  });

  it('applies the year range to the UTC instant (an offset can move a local 2000 into 1999 UTC)', () => {
    rejectedAt({ ...VALID, timestamp: '2000-01-01T00:30:00+01:00' }, 'timestamp');
    accepted({ ...VALID, timestamp: '1999-12-31T23:30:00-01:00' });
  });
});

describe('ids', () => {
  it('needs at least one non-empty id', () => {
    rejectedAt(without('anonymous_id'), 'anonymous_id');
    rejectedAt({ ...VALID, anonymous_id: '', user_id: '' }, 'anonymous_id');
    expect(rejectedAt({ ...VALID, anonymous_id: null, user_id: null }, 'anonymous_id')).toMatch(/user_id/);
  });

  it('accepts user_id alone, and the user key is then user_id', () => {
    const { event } = accepted({ ...without('anonymous_id'), user_id: 'user-1' });
    expect(event.userKey).toBe('user-1');
    expect(accepted({ ...VALID, anonymous_id: '', user_id: 'user-2' }).event.userKey).toBe('user-2');
  });

  it('takes the user key from anonymous_id when both are set', () => {
    const { event } = accepted({ ...VALID, anonymous_id: 'anon-9', user_id: 'user-9' });
    expect([event.userKey, event.anonymousId, event.userId]).toEqual(['anon-9', 'anon-9', 'user-9']);
  });
});

describe('channel', () => {
  it.each(['web', 'app', 'server', 'store'])('accepts %s', (channel) => {
    expect(accepted({ ...VALID, channel }).event.channel).toBe(channel);
  });

  it('defaults to web', () => {
    expect(accepted(VALID).event.channel).toBe('web');
  });

  it.each(['tv', 'WEB', ''])('rejects %p', (channel) => {
    rejectedAt({ ...VALID, channel }, 'channel');
  });
});

describe('geo.country', () => {
  it('accepts an ISO 3166-1 alpha-2 code', () => {
    expect(accepted({ ...VALID, geo: { country: 'DE' } }).event.country).toBe('DE');
  });

  it('accepts lower case and normalises it to upper case (beyond the event format)', () => {
    expect(accepted({ ...VALID, geo: { country: 'de' } }).event.country).toBe('DE');
  });

  it('treats an empty country like the other optional texts: absent', () => {
    expect(accepted({ ...VALID, geo: { country: '' } }).event.country).toBe('');
  });

  it.each(['DEU', 'D', 'D1', 'Germany'])('rejects %p', (country) => {
    expect(rejectedAt({ ...VALID, geo: { country } }, 'geo.country')).toMatch(/alpha-2/);
  });
});

describe('unknown fields', () => {
  it('ignores unknown top-level fields', () => {
    const result = accepted({ ...VALID, $schema: 'x', extra: { deep: [1, 2] }, version: 3, context: 'whatever' });
    expect(result.valid).not.toHaveProperty('extra');
    expect(result.event.eventId).toBe('evt-1');
  });
});

describe('message size', () => {
  /** A valid event whose JSON is exactly `bytes` bytes long, padded with `pad` characters. */
  function eventOfBytes(bytes: number, pad = 'x'): string {
    const empty = JSON.stringify({ ...VALID, properties: { pad: '' } });
    const padBytes = Buffer.byteLength(pad, 'utf8');
    const room = bytes - Buffer.byteLength(empty, 'utf8');
    expect(room % padBytes).toBe(0);
    const text = JSON.stringify({ ...VALID, properties: { pad: pad.repeat(room / padBytes) } });
    expect(Buffer.byteLength(text, 'utf8')).toBe(bytes);
    return text;
  }

  it('is 64 KiB', () => {
    expect(MAX_EVENT_BYTES).toBe(65_536);
  });

  it('accepts a message of exactly 64 KiB', () => {
    expect(parseEvent(eventOfBytes(65_536)).ok).toBe(true);
    expect(parseEvent(Buffer.from(eventOfBytes(65_536))).ok).toBe(true);
  });

  it('rejects a message of 64 KiB + 1 byte, naming the limit', () => {
    expect(rejectedAt(eventOfBytes(65_537), '')).toMatch(/65536/);
    expect(parseEvent(Buffer.from(eventOfBytes(65_537))).ok).toBe(false);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 2-byte characters: far fewer than 65 536 characters, but more than 65 536 bytes
    const text = eventOfBytes(65_538, 'é');
    expect(text.length).toBeLessThan(65_536);
    rejectedAt(text, '');
  });
});

describe('not an event at all', () => {
  it.each(['{"event_id": ', '', 'not json', "{'event_id': 'x'}"])('rejects invalid JSON %p', (text) => {
    expect(rejectedAt(text, '')).toMatch(/not valid JSON/);
  });

  it.each(['[]', '[{"event_id":"x"}]', '42', '"text"', 'null', 'true'])('rejects the non-object %s', (text) => {
    expect(rejectedAt(text, '')).toMatch(/JSON object/);
  });

  it('validateEvent never throws for arbitrary values', () => {
    for (const value of [undefined, null, 0, 'x', [], {}, { timestamp: {} }, new Date()]) {
      expect(validateEvent(value).ok).toBe(false);
    }
  });
});
