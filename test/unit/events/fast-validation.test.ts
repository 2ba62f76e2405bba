/**
 * The fast validation path (ajv over the generated JSON Schema, plus the timestamp checks) must
 * agree with zod — the definition of a valid event — on every input: same accept/reject, same
 * validated event, same engine view, same `events` row, same error. Random near-valid and
 * invalid events here.
 * Also: the URL shortcuts of the normalisation agree with `new URL`.
 */
import fc from 'fast-check';
import { eventSchema } from '../../../src/events/event-schema';
import { fastCheckEvent, toValidEvent, type CheckedEvent } from '../../../src/events/fast-validate';
import { eventRowOf, toEventRow } from '../../../src/clickhouse/event-row';
import { parseEvent, parseEventFields, parseSessionEvent, validateEvent } from '../../../src/events/parse-event';
import { sessionEventOf, toSessionEvent, urlHelpersForTest } from '../../../src/events/session-event';
import { formatTimestamp, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, parseFormattedTimestamp } from '../../../src/events/timestamp';

const astral = fc.constantFrom('😀', '𝄞', '\u{10FFFF}', 'é', 'ß', '\u0000', '\n', '"', '\\', '\uD800', ' ');
/** Strings around the interesting lengths (0, 1, 2, 64, 65, 128, 129, 256, 257), some astral. */
const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('', 'x', 'de', 'DE', 'page_view', 'screen_view', 'web', 'app', 'server', 'store', 'WEB', 'tv'),
  fc.tuple(fc.constantFrom(0, 1, 2, 63, 64, 65, 127, 128, 129, 255, 256, 257), astral, fc.boolean()).map(([n, ch, pad]) =>
    pad ? 'x'.repeat(Math.max(0, n - ch.length)) + ch : ch.repeat(Math.max(1, Math.floor(n / ch.length))),
  ),
  fc.array(astral, { maxLength: 4 }).map((a) => a.join('')),
);

const day = fc.integer({ min: 0, max: 32 }).map((d) => String(d).padStart(2, '0'));
const isoTimestamp = fc
  .record({
    year: fc.constantFrom('1999', '2000', '2024', '2023', '2099', '2100', '0000', '99'),
    month: fc.integer({ min: 0, max: 13 }).map((m) => String(m).padStart(2, '0')),
    day,
    t: fc.constantFrom('T', 't', ' '),
    hour: fc.constantFrom('00', '12', '23', '24'),
    minute: fc.constantFrom('00', '59', '60'),
    second: fc.constantFrom('00', '59', '60'),
    frac: fc.constantFrom('', '.5', '.123', ',123456789', '.1234567890', '.'),
    zone: fc.constantFrom('Z', 'z', '', '+02:00', '-05:30', '+0200', '+02', '+24:00', '+23:59', '-00:60', '+2'),
  })
  .map((p) => `${p.year}-${p.month}-${p.day}${p.t}${p.hour}:${p.minute}:${p.second}${p.frac}${p.zone}`);

const timestamp = fc.oneof(
  isoTimestamp,
  fc.integer({ min: 946_684_800_000 - 5, max: 946_684_800_000 + 5 }),
  fc.integer({ min: 4_102_444_799_999 - 5, max: 4_102_444_799_999 + 5 }),
  fc.integer({ min: 946_684_800_000, max: 4_102_444_799_999 }),
  fc.constantFrom(1714564800000.5, 0, -1, 1e300, '1714564800000', '', '2024-05-01', null, true, [1714564800000], { at: 1 }),
);

/** Anything a JSON value can be, to put where it does not belong. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, 1, -1.5, '', 'x', [], {}, [null], { x: 1 }),
  text,
  fc.array(text, { maxLength: 2 }),
  fc.dictionary(text, text, { maxKeys: 2 }),
);

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(fc.oneof(arb, fc.constant(null)), { nil: undefined });
const maybeJunk = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: arb }, { weight: 1, arbitrary: junk });

const url = fc.oneof(
  fc.constantFrom('https://shop.example/a?v=1', 'https://www.google.com/', 'http://shop.example', '/pricing?plan=pro', 'not a url', ''),
  fc
    .tuple(fc.constantFrom('https://', 'http://', 'HTTPS://', 'ftp://', 'android-app://'), fc.constantFrom('shop.example', 'www.shop.example', 'Other.Example', 'xn--nxasmq6b.com', '1.2.3.4', 'a.1', 'ünï.example', 'a..b'), fc.constantFrom('', '/', '/a/b', '/a/../b', '/%2e/x', '/a b', '/é', ':8080/x', '?q', '#f'))
    .map((p) => p.join('')),
);

const nested = (fields: readonly string[], value: fc.Arbitrary<unknown>) =>
  maybeJunk(
    fc.record(Object.fromEntries([...fields, 'extra'].map((f) => [f, optional(maybeJunk(value))])), { requiredKeys: [] }),
  );

const event = fc.record(
  {
    event_id: maybeJunk(text),
    type: maybeJunk(fc.oneof(text, fc.constantFrom('page_view', 'screen_view', 'tap'))),
    name: optional(maybeJunk(text)),
    timestamp: maybeJunk(timestamp),
    anonymous_id: optional(maybeJunk(text)),
    user_id: optional(maybeJunk(text)),
    site: optional(maybeJunk(fc.oneof(text, fc.constantFrom('default', 'shop', 'a.b-c_9', '9', 'Shop', '-x', 'a'.repeat(64), 'a'.repeat(65))))),
    channel: optional(maybeJunk(fc.constantFrom('web', 'app', 'server', 'store', 'WEB', ''))),
    key_event: optional(maybeJunk(fc.boolean())),
    page: optional(nested(['url', 'path', 'title', 'referrer'], fc.oneof(url, text))),
    campaign: optional(nested(['source', 'medium', 'name', 'term', 'content'], text)),
    device: optional(nested(['type', 'os', 'browser', 'app_version'], text)),
    geo: optional(nested(['country', 'region', 'city'], fc.oneof(text, fc.constantFrom('de', 'DE', 'D1', 'DEU', 'ü2')))),
    properties: optional(maybeJunk(fc.dictionary(fc.oneof(text, fc.constant('__proto__')), junk, { maxKeys: 3 }))),
    extra: optional(junk),
  },
  { requiredKeys: [] },
);

/** As the value would come out of JSON.parse (no undefined, no -0, plain objects). */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function checkAgreement(json: unknown): void {
  const ts = fastCheckEvent(json);
  const zod = eventSchema.safeParse(json);
  const isObject = typeof json === 'object' && json !== null && !Array.isArray(json);
  expect(!Number.isNaN(ts)).toBe(isObject && zod.success);
  const line = JSON.stringify(json);
  const viaZod = validateEvent(json);
  const fast = parseEvent(line);
  const sessionOnly = parseSessionEvent(line);
  if (viaZod.ok && zod.success) {
    expect(ts).toBe(zod.data.timestamp);
    expect(toValidEvent(json as CheckedEvent, ts)).toStrictEqual(zod.data);
    expect(sessionEventOf(json as CheckedEvent, ts)).toStrictEqual(toSessionEvent(zod.data));
    expect(fast).toStrictEqual(viaZod);
    expect(sessionOnly).toStrictEqual(viaZod.event);
    // The worker's path (no ValidEvent copy) makes the same events row.
    const fields = parseEventFields(line);
    if (!fields.ok) throw new Error('parseEventFields refused a valid event');
    expect(fields.event).toStrictEqual(viaZod.event);
    expect(eventRowOf(fields.fields, fields.ts, line)).toStrictEqual(toEventRow(viaZod.valid, line));
  } else {
    expect(parseEventFields(line).ok).toBe(false);
    expect(fast.ok).toBe(false);
    if (fast.ok || viaZod.ok) return;
    expect(fast.error.message).toBe(viaZod.error.message);
    expect(sessionOnly).toStrictEqual(fast.error);
  }
}

describe('fast event validation agrees with zod', () => {
  it('on random near-valid and invalid events', () => {
    fc.assert(
      fc.property(event, (e) => checkAgreement(asJson(e))),
      { numRuns: 4000 },
    );
  });

  it('on mostly valid events (only one field at a time goes wrong)', () => {
    const valid = fc.record({
      event_id: fc.string({ minLength: 1, maxLength: 128 }),
      type: fc.constantFrom('page_view', 'screen_view', 'tap'),
      timestamp: fc.oneof(isoTimestamp, fc.integer({ min: 946_684_800_000, max: 4_102_444_799_999 })),
      anonymous_id: fc.string({ maxLength: 128 }),
      user_id: fc.option(fc.string({ maxLength: 128 }), { nil: null }),
      page: fc.record({ url, referrer: fc.option(url, { nil: null }), path: fc.option(text, { nil: undefined }) }, { requiredKeys: ['url'] }),
      campaign: fc.option(fc.record({ source: fc.option(text, { nil: null }), medium: text }), { nil: null }),
    });
    fc.assert(
      fc.property(valid, fc.option(fc.tuple(fc.constantFrom('event_id', 'type', 'timestamp', 'anonymous_id', 'user_id', 'page', 'geo', 'channel'), junk)), (e, broken) => {
        const json = asJson(e) as Record<string, unknown>;
        if (broken) json[broken[0]] = asJson(broken[1]);
        checkAgreement(json);
      }),
      { numRuns: 3000 },
    );
  });

  it('on toISOString-shaped timestamps, near-valid ones and day, month and year edges', () => {
    const mostly = (valid: string[], invalid: string[]) =>
      fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: fc.constantFrom(...invalid) });
    const digit = mostly(['0', '1', '2', '5', '9'], ['x', '٣', ' ']);
    const shaped = fc
      .tuple(
        fc.constantFrom('1999', '2000', '2023', '2024', '2099', '2100', '0024', '20x4'),
        fc.constantFrom('00', '01', '02', '04', '12', '13'),
        fc.constantFrom('00', '01', '28', '29', '30', '31', '32'),
        mostly(['T', 't'], [' ', 'X']),
        mostly(['00', '23'], ['24']),
        mostly(['00', '59'], ['60']),
        mostly(['00', '59'], ['60']),
        mostly(['.', ','], [':']),
        fc.tuple(digit, digit, digit).map((d) => d.join('')),
        mostly(['Z', 'z'], ['Q', 'ZZ', '']),
      )
      .map(([y, mo, d, t, h, mi, s, point, ms, zone]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${point}${ms}${zone}`);
    fc.assert(
      fc.property(fc.oneof(shaped, fc.integer({ min: MIN_EVENT_TIME_MS, max: MAX_EVENT_TIME_MS }).map((ms) => new Date(ms).toISOString())), (timestamp) => {
        checkAgreement({ event_id: 'e', type: 'page_view', timestamp, anonymous_id: 'a' });
      }),
      { numRuns: 5000 },
    );
    for (const day of ['2000-02-29', '2000-02-30', '2023-02-29', '2024-02-29', '2100-02-29', '2099-04-31', '2099-12-31', '1999-12-31']) {
      for (const time of ['T00:00:00.000Z', 't23:59:59,999z']) checkAgreement({ event_id: 'e', type: 't', timestamp: day + time, user_id: 'u' });
    }
  });

  it('on properties nested up to and beyond the limit, and long strings of astral characters', () => {
    const nest = (levels: number, leaf: unknown, inArray: boolean): unknown => {
      let value = leaf;
      for (let i = 0; i < levels; i++) value = inArray && i % 2 === 0 ? [1, value] : { k: value, n: null };
      return value;
    };
    for (let levels = 7; levels <= 12; levels++) {
      for (const inArray of [false, true]) {
        for (const leaf of [1, {}, [], null, 'x']) {
          checkAgreement({ event_id: 'e', type: 't', timestamp: 1714564800000, user_id: 'u', properties: { a: nest(levels, leaf, inArray), b: 2 } });
        }
      }
    }
    for (const n of [64, 65, 128, 129]) {
      checkAgreement({ event_id: '😀'.repeat(n), type: '😀'.repeat(n / 2), timestamp: 1714564800000, anonymous_id: '😀'.repeat(n) });
    }
  });

  it('on values that are not objects', () => {
    for (const value of [null, 0, 'x', [], [{ event_id: 'x' }], true]) checkAgreement(value);
  });

  it('keeps the exact zod errors', () => {
    const line = JSON.stringify({ event_id: 'e', type: 't', timestamp: '2023-02-29T12:00:00Z', anonymous_id: 'a' });
    const parsed = parseEvent(line);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).toBe('timestamp: day out of range');
  });
});

describe('URL shortcuts agree with new URL', () => {
  const referencePath = (u: string): string => {
    try {
      return new URL(u).pathname;
    } catch {
      return u.startsWith('/') ? (u.split(/[?#]/, 1)[0] ?? '') : '';
    }
  };
  const referenceHost = (u: string): string => {
    try {
      return new URL(u).hostname.toLowerCase();
    } catch {
      return '';
    }
  };
  const hostChars = fc.constantFrom('a', 'B', 'z', '0', '9', '-', '.', '_', '%41', 'xn--', '0x', 'é', '@', ':', ':80', ':99999', ' ', '\t', '\\');
  const pathChars = fc.constantFrom('/', 'a', 'Z', '.', '..', '%2e', '%2E', '%20', ' ', '\t', '\n', '\\', '?', '#', 'é', '😀', '"', '<', '{', '|', '^', '`', "'", '~', '!', '$', '&', '(', ')', '*', '+', ',', ';', '=', ':', '@');
  const randomUrl = fc
    .tuple(
      fc.constantFrom('http://', 'https://', 'HTTP://', 'hTtPs://', 'http:/', 'http:', 'ftp://', 'file://', 'x://', ' http://', ''),
      fc.array(hostChars, { maxLength: 8 }).map((a) => a.join('')),
      fc.array(pathChars, { maxLength: 8 }).map((a) => a.join('')),
    )
    .map(([scheme, host, path]) => scheme + host + path);

  it('on random URLs', () => {
    fc.assert(
      fc.property(fc.oneof(randomUrl, url), (u) => {
        expect(urlHelpersForTest.hostOfUrl(u)).toBe(referenceHost(u));
        expect(urlHelpersForTest.pathOfUrl(u)).toBe(referencePath(u));
      }),
      { numRuns: 20000 },
    );
  });

  it('on known shapes', () => {
    for (const u of ['https://Shop.Example/A/b?x#y', 'http://a.b.c', 'https://a-.example/x', 'https://1.2.3/x', 'https://0x7f.1/', 'https://a.com./x', 'https://xn--a.com/', 'https://a.com/./x', 'https://a.com/x/..', 'https://a.com/%2E%2e/y']) {
      expect(urlHelpersForTest.hostOfUrl(u)).toBe(referenceHost(u));
      expect(urlHelpersForTest.pathOfUrl(u)).toBe(referencePath(u));
    }
  });
});

describe('formatTimestamp', () => {
  it('equals toISOString for any instant (fast path for 2000–2099)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: MIN_EVENT_TIME_MS, max: MAX_EVENT_TIME_MS }),
          fc
            .tuple(fc.integer({ min: 0, max: 36_524 }), fc.constantFrom(0, 1, 999, 86_399_999))
            .map(([d, offset]) => MIN_EVENT_TIME_MS + d * 86_400_000 + offset),
          fc.integer({ min: -8.64e15, max: 8.64e15 }),
          fc.double({ min: -1e13, max: 5e12, noNaN: true }),
        ),
        (ms) => {
          expect(formatTimestamp(ms)).toBe(new Date(ms).toISOString());
        },
      ),
      { numRuns: 20000 },
    );
    for (const ms of [MIN_EVENT_TIME_MS, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS - 1, MAX_EVENT_TIME_MS + 1, Date.UTC(2024, 1, 29, 23, 59, 59, 999)]) {
      expect(formatTimestamp(ms)).toBe(new Date(ms).toISOString());
    }
  });
});

describe('parseFormattedTimestamp', () => {
  it('reads back what formatTimestamp wrote, for any whole millisecond Date can hold', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: MIN_EVENT_TIME_MS, max: MAX_EVENT_TIME_MS }), fc.integer({ min: -8.64e15, max: 8.64e15 })), (ms) => {
        expect(parseFormattedTimestamp(formatTimestamp(ms))).toBe(ms);
      }),
      { numRuns: 20000 },
    );
    for (const text of ['2024-02-29T23:59:59.999Z', '2000-03-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '0000-01-01T00:00:00.000Z']) {
      expect(parseFormattedTimestamp(text)).toBe(Date.parse(text));
    }
  });

  it('leaves other forms to Date.parse, and is NaN for what is not a time', () => {
    expect(parseFormattedTimestamp('2024-05-01T10:00:00+02:00')).toBe(Date.parse('2024-05-01T08:00:00Z'));
    expect(parseFormattedTimestamp('2024-05-01T1x:00:00.000Z')).toBeNaN();
    expect(parseFormattedTimestamp('yesterday')).toBeNaN();
  });
});
