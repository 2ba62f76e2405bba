/**
 * The Segment mapping (src/events/segment/), row by row of the table in docs/segment.md, the
 * validation of Segment messages, and properties: it never throws on arbitrary JSON, and what
 * it accepts our own parser accepts too.
 */
import fc from 'fast-check';
import { InvalidEventError } from '../../../src/errors';
import { parseEvent } from '../../../src/events/parse-event';
import { mapSegmentMessage, parseSegmentEvent, segmentToEvent, utmOf, type SegmentMappingOptions } from '../../../src/events/segment';

const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

const BASE = { messageId: 'm-1', anonymousId: 'anon-1', timestamp: '2024-05-01T12:00:00.000Z' };

function mapped(message: Record<string, unknown>, options: SegmentMappingOptions = {}): Record<string, unknown> {
  const result = segmentToEvent(message, options);
  if (!result.ok) throw new Error(`expected the message to map, got ${result.error.message}`);
  return result.event;
}

/** The message is rejected and the error names `field`; returns the reason. */
function rejectedAt(message: unknown, field: string, options: SegmentMappingOptions = {}): string {
  const result = segmentToEvent(message, options);
  if (result.ok) throw new Error(`expected a rejection at "${field}", got ${JSON.stringify(result.event)}`);
  expect(result.error).toBeInstanceOf(InvalidEventError);
  expect(result.error.code).toBe('INVALID_EVENT');
  expect(result.error.field).toBe(field);
  expect(result.error.reason).not.toBe('');
  return result.error.reason;
}

describe('event_id ← messageId', () => {
  it('copies messageId', () => {
    expect(mapped({ ...BASE, type: 'identify', messageId: 'abc-123' }).event_id).toBe('abc-123');
  });
  it('requires it, 1–128 characters', () => {
    const { messageId: _, ...without } = BASE;
    expect(rejectedAt({ ...without, type: 'identify' }, 'messageId')).toBe('is required');
    rejectedAt({ ...BASE, type: 'identify', messageId: '' }, 'messageId');
    rejectedAt({ ...BASE, type: 'identify', messageId: 'x'.repeat(129) }, 'messageId');
    expect(mapped({ ...BASE, type: 'identify', messageId: 'x'.repeat(128) }).event_id).toHaveLength(128);
    rejectedAt({ ...BASE, type: 'identify', messageId: 42 }, 'messageId');
  });
});

describe('type', () => {
  it.each([
    ['page', 'page_view'],
    ['screen', 'screen_view'],
    ['track', 'track'],
    ['identify', 'identify'],
    ['group', 'group'],
    ['alias', 'alias'],
  ])('%s → %s', (type, expected) => {
    expect(mapped({ ...BASE, type, event: 'Clicked', userId: 'u-1' }).type).toBe(expected);
  });
  it('rejects other types and a missing one', () => {
    expect(rejectedAt({ ...BASE, type: 'Track' }, 'type')).toMatch(/expected one of track, page, screen, identify, group, alias/);
    rejectedAt({ ...BASE, type: 'page_view' }, 'type');
    rejectedAt({ ...BASE }, 'type');
  });
});

describe('name', () => {
  it('is the event of a track call', () => {
    expect(mapped({ ...BASE, type: 'track', event: 'Order Completed', name: 'ignored' }).name).toBe('Order Completed');
  });
  it('is the name of a page or screen call', () => {
    expect(mapped({ ...BASE, type: 'page', name: 'Pricing' }).name).toBe('Pricing');
    expect(mapped({ ...BASE, type: 'screen', name: 'Home' }).name).toBe('Home');
  });
  it('is left out when missing, and for other calls', () => {
    expect(mapped({ ...BASE, type: 'page' })).not.toHaveProperty('name');
    expect(mapped({ ...BASE, type: 'identify', name: 'x', event: 'y' })).not.toHaveProperty('name');
    expect(mapped({ ...BASE, type: 'group', name: 'x' })).not.toHaveProperty('name');
  });
  it('a track call needs its event name, at most 256 characters', () => {
    expect(rejectedAt({ ...BASE, type: 'track' }, 'event')).toBe('is required for a track call');
    rejectedAt({ ...BASE, type: 'track', event: '' }, 'event');
    rejectedAt({ ...BASE, type: 'track', event: 'e'.repeat(257) }, 'event');
    rejectedAt({ ...BASE, type: 'page', name: 'n'.repeat(257) }, 'name');
    // Not read for an identify call, so not checked there.
    expect(mapped({ ...BASE, type: 'identify', name: 'n'.repeat(300) }).type).toBe('identify');
  });
});

describe('timestamp', () => {
  const times = {
    originalTimestamp: '2024-05-01T12:00:00.000Z',
    sentAt: '2024-05-01T12:00:10.000Z',
    receivedAt: '2024-05-01T14:00:12.500Z',
  };
  it('is timestamp when given (whatever else is there)', () => {
    const event = mapped({ ...BASE, type: 'identify', ...times, timestamp: '2024-05-01T14:30:00+02:00' });
    expect(event.timestamp).toBe('2024-05-01T12:30:00.000Z');
  });
  it('else receivedAt − (sentAt − originalTimestamp): the device clock corrected', () => {
    const { timestamp: _, ...base } = BASE;
    // The device clock is 2 h 0 min 2.5 s behind: sent 10 s after the event, received at 14:00:12.5.
    expect(mapped({ ...base, type: 'identify', ...times }).timestamp).toBe('2024-05-01T14:00:02.500Z');
  });
  it('else originalTimestamp', () => {
    const { timestamp: _, ...base } = BASE;
    expect(mapped({ ...base, type: 'identify', originalTimestamp: times.originalTimestamp, sentAt: times.sentAt }).timestamp).toBe('2024-05-01T12:00:00.000Z');
    expect(mapped({ ...base, type: 'identify', originalTimestamp: times.originalTimestamp, receivedAt: times.receivedAt }).timestamp).toBe(
      '2024-05-01T12:00:00.000Z',
    );
  });
  it('else receivedAt, the message’s own before the one from the options', () => {
    const { timestamp: _, ...base } = BASE;
    expect(mapped({ ...base, type: 'identify', receivedAt: times.receivedAt }, { receivedAt: Date.UTC(2025, 0, 1) }).timestamp).toBe(
      '2024-05-01T14:00:12.500Z',
    );
    expect(mapped({ ...base, type: 'identify' }, { receivedAt: Date.UTC(2025, 0, 1) }).timestamp).toBe('2025-01-01T00:00:00.000Z');
    expect(mapped({ ...base, type: 'identify' }, { receivedAt: '2025-01-01T01:00:00+01:00' }).timestamp).toBe('2025-01-01T00:00:00.000Z');
  });
  it('the receivedAt of the options takes part in the clock-skew correction', () => {
    const { timestamp: _, ...base } = BASE;
    const { receivedAt, ...rest } = times;
    expect(mapped({ ...base, type: 'identify', ...rest }, { receivedAt }).timestamp).toBe('2024-05-01T14:00:02.500Z');
  });
  it('is required in one of its forms', () => {
    const { timestamp: _, ...base } = BASE;
    expect(rejectedAt({ ...base, type: 'identify' }, 'timestamp')).toMatch(/none of timestamp, originalTimestamp and receivedAt/);
    expect(rejectedAt({ ...base, type: 'identify', sentAt: times.sentAt }, 'timestamp')).toMatch(/none of/);
  });
  it('rejects times that are not ISO-8601 with a zone, naming the field', () => {
    rejectedAt({ ...BASE, type: 'identify', timestamp: '2024-05-01 12:00' }, 'timestamp');
    rejectedAt({ ...BASE, type: 'identify', timestamp: '2024-05-01T12:00:00' }, 'timestamp');
    rejectedAt({ ...BASE, type: 'identify', sentAt: 'yesterday' }, 'sentAt');
    rejectedAt({ ...BASE, type: 'identify', receivedAt: true }, 'receivedAt');
    rejectedAt({ ...BASE, type: 'identify', originalTimestamp: 1.5 }, 'originalTimestamp');
    const { timestamp: _, ...base } = BASE;
    rejectedAt({ ...base, type: 'identify' }, 'receivedAt', { receivedAt: 'soon' });
  });
  it('accepts epoch milliseconds as our own format does', () => {
    expect(mapped({ ...BASE, type: 'identify', timestamp: Date.UTC(2024, 4, 1) }).timestamp).toBe('2024-05-01T00:00:00.000Z');
  });
  it('the resulting time must be within 2000–2099', () => {
    expect(rejectedAt({ ...BASE, type: 'identify', timestamp: '1999-12-31T23:59:59Z' }, 'timestamp')).toMatch(/2000–2099/);
    const { timestamp: _, ...base } = BASE;
    // A device clock in 1970 is corrected into range: accepted.
    expect(
      mapped({ ...base, type: 'identify', originalTimestamp: '1970-01-01T00:00:00Z', sentAt: '1970-01-01T00:00:01Z', receivedAt: '2024-05-01T00:00:01Z' })
        .timestamp,
    ).toBe('2024-05-01T00:00:00.000Z');
    rejectedAt({ ...base, type: 'identify', originalTimestamp: '2150-01-01T00:00:00Z' }, 'originalTimestamp');
  });
});

describe('anonymous_id, user_id', () => {
  it('copies anonymousId and userId', () => {
    const event = mapped({ ...BASE, type: 'identify', anonymousId: 'a-9', userId: 'u-9' });
    expect(event).toMatchObject({ anonymous_id: 'a-9', user_id: 'u-9' });
  });
  it('leaves empty or missing ids out', () => {
    const event = mapped({ ...BASE, type: 'identify', anonymousId: '', userId: 'u-9' });
    expect(event).not.toHaveProperty('anonymous_id');
    expect(mapped({ ...BASE, type: 'identify', userId: null })).not.toHaveProperty('user_id');
  });
  it('needs one of them, each at most 128 characters', () => {
    rejectedAt({ messageId: 'm', timestamp: BASE.timestamp, type: 'track', event: 'x' }, 'anonymousId');
    rejectedAt({ ...BASE, type: 'identify', anonymousId: '', userId: '' }, 'anonymousId');
    rejectedAt({ ...BASE, type: 'identify', anonymousId: 'a'.repeat(129) }, 'anonymousId');
    rejectedAt({ ...BASE, type: 'identify', userId: 'u'.repeat(129) }, 'userId');
    rejectedAt({ ...BASE, type: 'identify', userId: 7 }, 'userId');
  });
  it('alias: userId, with previousId as anonymous_id when anonymousId is empty', () => {
    const { anonymousId: _, ...base } = BASE;
    expect(mapped({ ...base, type: 'alias', userId: 'u-1', previousId: 'anon-7' })).toMatchObject({ anonymous_id: 'anon-7', user_id: 'u-1' });
    expect(mapped({ ...base, type: 'alias', anonymousId: '', userId: 'u-1', previousId: 'anon-7' }).anonymous_id).toBe('anon-7');
    expect(mapped({ ...base, type: 'alias', anonymousId: 'anon-1', userId: 'u-1', previousId: 'anon-7' }).anonymous_id).toBe('anon-1');
    expect(mapped({ ...base, type: 'alias', previousId: 'anon-7' })).toMatchObject({ anonymous_id: 'anon-7' });
    rejectedAt({ ...base, type: 'alias', userId: 'u', previousId: 'p'.repeat(129) }, 'previousId');
    expect(rejectedAt({ ...base, type: 'alias' }, 'anonymousId')).toMatch(/previousId/);
  });
  it('previousId is not an id for other calls', () => {
    const { anonymousId: _, ...base } = BASE;
    rejectedAt({ ...base, type: 'identify', previousId: 'anon-7' }, 'anonymousId');
  });
});

describe('channel', () => {
  it('is context.channel when it is one of ours', () => {
    for (const channel of ['web', 'app', 'server', 'store']) {
      expect(mapped({ ...BASE, type: 'track', event: 'x', channel: 'browser', context: { channel } }).channel).toBe(channel);
    }
  });
  it('else Segment’s top-level channel: browser → web, mobile → app, server → server', () => {
    expect(mapped({ ...BASE, type: 'track', event: 'x', channel: 'browser' }).channel).toBe('web');
    expect(mapped({ ...BASE, type: 'page', channel: 'mobile' }).channel).toBe('app');
    expect(mapped({ ...BASE, type: 'page', channel: 'server' }).channel).toBe('server');
    expect(mapped({ ...BASE, type: 'track', event: 'x', channel: 'browser', context: { channel: 'kiosk' } }).channel).toBe('web');
  });
  it('else web for page, app for screen, server otherwise', () => {
    expect(mapped({ ...BASE, type: 'page' }).channel).toBe('web');
    expect(mapped({ ...BASE, type: 'screen' }).channel).toBe('app');
    for (const type of ['track', 'identify', 'group', 'alias']) {
      expect(mapped({ ...BASE, type, event: 'x', channel: 'client', context: { channel: 'WEB' } }).channel).toBe('server');
    }
    expect(mapped({ ...BASE, type: 'page', channel: '__proto__' }).channel).toBe('web');
  });
});

describe('page', () => {
  const contextPage = { url: 'https://shop.example/a?x=1', path: '/a', title: 'A', referrer: 'https://search.example/' };
  it('is context.page (url, path, title, referrer)', () => {
    expect(mapped({ ...BASE, type: 'track', event: 'x', context: { page: { ...contextPage, search: '?x=1' } } }).page).toEqual(contextPage);
  });
  it('for a page call, properties fill what context.page lacks', () => {
    const event = mapped({
      ...BASE,
      type: 'page',
      context: { page: { url: 'https://shop.example/a', title: '' } },
      properties: { url: 'https://other.example/', path: '/from-properties', title: 'T', referrer: 42 },
    });
    expect(event.page).toEqual({ url: 'https://shop.example/a', path: '/from-properties', title: 'T' });
  });
  it('only a page call’s properties count', () => {
    expect(mapped({ ...BASE, type: 'track', event: 'x', properties: { url: 'https://shop.example/' } })).not.toHaveProperty('page');
    expect(mapped({ ...BASE, type: 'screen', properties: { path: '/p' } })).not.toHaveProperty('page');
  });
  it('is left out when nothing is known', () => {
    expect(mapped({ ...BASE, type: 'page', context: { page: {} } })).not.toHaveProperty('page');
  });
  it('rejects a context.page field that is not a string', () => {
    rejectedAt({ ...BASE, type: 'page', context: { page: { url: 5 } } }, 'context.page.url');
    rejectedAt({ ...BASE, type: 'page', context: { page: 'x' } }, 'context.page');
    rejectedAt({ ...BASE, type: 'page', context: [] }, 'context');
  });
});

describe('campaign', () => {
  it('is context.campaign', () => {
    const campaign = { source: 'news', medium: 'email', name: 'spring', term: 'shoes', content: 'top' };
    const event = mapped({ ...BASE, type: 'page', context: { campaign, page: { url: 'https://s.example/?utm_source=ignored' } } });
    expect(event.campaign).toEqual(campaign);
  });
  it('else the utm_* parameters of page.url', () => {
    const url = 'https://s.example/p?utm_source=ads&utm_medium=cpc&utm_campaign=spring%20sale&utm_term=a+b&utm_content=c&x=1#utm_source=no';
    expect(mapped({ ...BASE, type: 'page', properties: { url } }).campaign).toEqual({
      source: 'ads',
      medium: 'cpc',
      name: 'spring sale',
      term: 'a b',
      content: 'c',
    });
    expect(mapped({ ...BASE, type: 'page', context: { campaign: {}, page: { url: '/p?utm_source=rel' } } }).campaign).toEqual({ source: 'rel' });
  });
  it('is left out when neither says anything', () => {
    expect(mapped({ ...BASE, type: 'page', properties: { url: 'https://s.example/p?q=1&utm_source=' } })).not.toHaveProperty('campaign');
    expect(mapped({ ...BASE, type: 'page' })).not.toHaveProperty('campaign');
  });
  it('utmOf reads relative and malformed URLs without throwing', () => {
    expect(utmOf('no-query')).toBeUndefined();
    // A broken percent-escape decodes to U+FFFD, as in a browser's URLSearchParams.
    expect(utmOf('?utm_medium=%E0%A4%A')).toEqual({ medium: '\uFFFD%A' });
    expect(utmOf('https://x.example/?utm_source=a&utm_source=b')).toEqual({ source: 'a' });
  });
});

describe('device', () => {
  it('type, os, browser and app version from context', () => {
    const event = mapped({
      ...BASE,
      type: 'screen',
      context: { device: { type: 'ios' }, os: { name: 'iOS' }, app: { version: '3.1.0' }, userAgent: CHROME_MAC },
    });
    expect(event.device).toEqual({ type: 'ios', os: 'iOS', browser: 'Chrome', app_version: '3.1.0' });
  });
  it('the browser name is parsed from context.userAgent', () => {
    expect(mapped({ ...BASE, type: 'page', context: { userAgent: FIREFOX_LINUX } }).device).toEqual({ browser: 'Firefox' });
    expect(mapped({ ...BASE, type: 'page', context: { userAgent: 'not a browser at all' } })).not.toHaveProperty('device');
  });
  it('uses the parser given in the options', () => {
    const event = mapped({ ...BASE, type: 'page', context: { userAgent: CHROME_MAC } }, { parseBrowser: (ua) => `len ${ua.length}` });
    expect(event.device).toEqual({ browser: `len ${CHROME_MAC.length}` });
  });
  it('reads a numeric app version as text', () => {
    expect(mapped({ ...BASE, type: 'screen', context: { app: { version: 7 } } }).device).toEqual({ app_version: '7' });
  });
  it('is left out when nothing is known', () => {
    expect(mapped({ ...BASE, type: 'screen', context: { device: { type: '' } } })).not.toHaveProperty('device');
  });
});

describe('geo', () => {
  it('country (upper case), region and city from context.location', () => {
    const event = mapped({ ...BASE, type: 'page', context: { location: { country: 'de', region: 'BE', city: 'Berlin', latitude: 52.5 } } });
    expect(event.geo).toEqual({ country: 'DE', region: 'BE', city: 'Berlin' });
  });
  it('a country that is not an alpha-2 code is left out, the rest kept', () => {
    const event = mapped({ ...BASE, type: 'page', context: { location: { country: 'United States', city: 'San Francisco' } } });
    expect(event.geo).toEqual({ city: 'San Francisco' });
  });
});

describe('key_event', () => {
  it('is true when properties.key_event is true', () => {
    expect(mapped({ ...BASE, type: 'page', properties: { key_event: true } }).key_event).toBe(true);
    expect(mapped({ ...BASE, type: 'page', properties: { key_event: 'true' } })).not.toHaveProperty('key_event');
  });
  it('is true for a track event in the key-event list (a set or an array)', () => {
    const order = { ...BASE, type: 'track', event: 'Order Completed' };
    expect(mapped(order, { keyEvents: new Set(['Order Completed']) }).key_event).toBe(true);
    expect(mapped(order, { keyEvents: ['Signed Up', 'Order Completed'] }).key_event).toBe(true);
    expect(mapped(order, { keyEvents: ['order completed'] })).not.toHaveProperty('key_event');
    expect(mapped(order)).not.toHaveProperty('key_event');
  });
  it('the list names track events only', () => {
    expect(mapped({ ...BASE, type: 'page', name: 'Order Completed' }, { keyEvents: ['Order Completed'] })).not.toHaveProperty('key_event');
  });
});

describe('properties', () => {
  it('are copied as they are', () => {
    const properties = { revenue: 12.5, items: [{ sku: 'a' }], nested: { deep: { x: null } } };
    expect(mapped({ ...BASE, type: 'track', event: 'x', properties }).properties).toEqual(properties);
  });
  it('must be an object, nested at most 10 levels', () => {
    rejectedAt({ ...BASE, type: 'track', event: 'x', properties: [1] }, 'properties');
    let deep: unknown = 1;
    for (let i = 0; i < 11; i++) deep = { d: deep };
    rejectedAt({ ...BASE, type: 'track', event: 'x', properties: deep }, 'properties');
  });
  it('traits and unknown fields are ignored', () => {
    const event = mapped({ ...BASE, type: 'identify', traits: { email: 'a@b.example' }, integrations: { All: false }, version: 2 });
    expect(Object.keys(event).sort()).toEqual(['anonymous_id', 'channel', 'event_id', 'timestamp', 'type']);
  });
});

describe('the mapped event', () => {
  it('is accepted by our own parser as the same event', () => {
    const message = {
      type: 'page',
      messageId: 'm-42',
      anonymousId: 'a-42',
      userId: 'u-42',
      timestamp: '2024-05-01T12:00:00.123Z',
      name: 'Pricing',
      context: {
        page: { url: 'https://shop.example/pricing?utm_source=news', referrer: 'https://www.google.com/' },
        userAgent: CHROME_MAC,
        location: { country: 'fr', city: 'Paris' },
      },
      properties: { plan: 'pro' },
    };
    const result = mapSegmentMessage(message);
    if (!result.ok) throw result.error;
    const own = parseEvent(JSON.stringify(result.event));
    if (!own.ok) throw own.error;
    expect(own.event).toEqual(result.parsed.event);
    expect(result.parsed.ts).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
    expect(own.event).toMatchObject({ userKey: 'a-42', isView: true, location: '/pricing', source: 'news', browser: 'Chrome', country: 'FR' });
  });
});

describe('hostile keys', () => {
  it('a "__proto__" key (an own property after JSON.parse) is dropped, never followed or copied', () => {
    const line =
      '{"type":"page","messageId":"m","anonymousId":"a","timestamp":"2024-05-01T00:00:00Z",' +
      '"properties":{"__proto__":{"polluted":1},"path":"/p"},' +
      '"context":{"__proto__":{"page":{"url":"https://x.example/?utm_source=evil"}},"page":{"__proto__":{"title":"T"}}}}';
    const parsed = parseSegmentEvent(line, {});
    if (!parsed.ok) throw parsed.error;
    expect(JSON.parse(parsed.raw)).toEqual({
      event_id: 'm',
      type: 'page_view',
      timestamp: '2024-05-01T00:00:00.000Z',
      anonymous_id: 'a',
      channel: 'web',
      page: { path: '/p' },
      properties: { path: '/p' },
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('parseSegmentEvent (bytes in)', () => {
  const message = { ...BASE, type: 'track', event: 'Clicked' };
  it('maps a message and gives the mapped event as raw JSON', () => {
    const parsed = parseSegmentEvent(Buffer.from(JSON.stringify(message)), {});
    if (!parsed.ok) throw parsed.error;
    expect(JSON.parse(parsed.raw)).toEqual(mapped(message));
    expect(parsed.event.userKey).toBe('anon-1');
    expect(parsed.ts).toBe(Date.UTC(2024, 4, 1, 12));
  });
  it('rejects bad JSON and messages over 64 KiB, like our own messages', () => {
    const bad = parseSegmentEvent('{"type":', {});
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.reason).toMatch(/not valid JSON/);
    const big = parseSegmentEvent(JSON.stringify({ ...message, properties: { pad: 'x'.repeat(70_000) } }), {});
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.error.reason).toMatch(/limit is 65536/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const iso = fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2110-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Mostly `good`, sometimes any JSON value at all. */
const mostly = <T>(good: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: fc.jsonValue(), weight: 1 });
const str = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('', 'web', 'app', 'server', 'store', 'browser', 'mobile', 'DE', 'United States', '__proto__'));

/** Messages near the valid ones: every field we read, each sometimes missing, sometimes odd. */
const segmentLike = fc.record(
  {
    type: mostly(fc.constantFrom('track', 'page', 'screen', 'identify', 'group', 'alias')),
    messageId: mostly(fc.string({ minLength: 1, maxLength: 8 })),
    timestamp: mostly(iso),
    originalTimestamp: iso,
    sentAt: iso,
    receivedAt: iso,
    anonymousId: str,
    userId: str,
    previousId: str,
    event: str,
    name: str,
    channel: str,
    context: mostly(
      fc.record(
        {
          channel: str,
          userAgent: fc.oneof(str, fc.constant(CHROME_MAC)),
          page: fc.record({ url: fc.oneof(str, fc.webUrl({ withQueryParameters: true })), path: str, title: str, referrer: str }, { requiredKeys: [] }),
          campaign: fc.record({ source: str, medium: str, name: str }, { requiredKeys: [] }),
          device: fc.record({ type: str }, { requiredKeys: [] }),
          os: fc.record({ name: str }, { requiredKeys: [] }),
          app: fc.record({ version: fc.oneof(str, fc.integer()) }, { requiredKeys: [] }),
          location: fc.record({ country: str, region: str, city: str }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      ),
    ),
    properties: mostly(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 }))),
  },
  { requiredKeys: [] },
);

describe('properties of the mapping', () => {
  it('never throws on arbitrary JSON, and always answers ok or an InvalidEventError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), segmentLike), maybe(fc.oneof(iso, fc.integer(), fc.string())), (message, receivedAt) => {
        const result = segmentToEvent(message, { receivedAt, keyEvents: ['x'] });
        if (!result.ok) expect(result.error).toBeInstanceOf(InvalidEventError);
        else expect(typeof result.event.event_id).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), segmentLike.map((m) => JSON.stringify(m))), (text) => {
        const result = parseSegmentEvent(text, {});
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('what it accepts, our own parser accepts as the same event', () => {
    let accepted = 0;
    fc.assert(
      fc.property(segmentLike, (message) => {
        const result = mapSegmentMessage(message);
        if (!result.ok) return;
        accepted += 1;
        const own = parseEvent(JSON.stringify(result.event));
        if (!own.ok) throw new Error(`own parser rejected ${JSON.stringify(result.event)}: ${own.error.message}`);
        expect(own.event).toEqual(result.parsed.event);
      }),
      { numRuns: 3000 },
    );
    // The generator must reach valid messages often enough for this to say something.
    expect(accepted).toBeGreaterThan(300);
  });

  it('is deterministic: the same message maps to the same event', () => {
    fc.assert(
      fc.property(segmentLike, (message) => {
        expect(JSON.stringify(segmentToEvent(message))).toBe(JSON.stringify(segmentToEvent(JSON.parse(JSON.stringify(message)))));
      }),
      { numRuns: 500 },
    );
  });
});
