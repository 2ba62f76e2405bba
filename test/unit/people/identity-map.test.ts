/**
 * `recompute --identities`: the identity map made in the same pass as the sessions, held to an
 * oracle that reads the raw events only (it shares no code with src/). Properties: the map
 * never depends on the order of the lines, on duplicated lines, on how the input is cut into
 * chunks, on spilling to disk or on worker threads; maps of any split of the input merge into
 * the map of the whole; the latest link by (timestamp, event_id) wins; an empty user_id links
 * nothing. Also the journey rules (src/people/journey.ts) on a worked example.
 */
import { Readable, Writable } from 'node:stream';
import fc from 'fast-check';
import type { SessionRecord } from '../../../src/engine/session-row';
import { compareUtf8, identityMapOf, LatestLink, linkOf, type IdentityEntry } from '../../../src/people/identity-link';
import { convertingSessionIds, identityLookup, personsOf, personSessionsOf } from '../../../src/people/journey';
import { parseSessionEvent } from '../../../src/events/parse-event';
import { InvalidEventError } from '../../../src/errors';
import { recompute, type RecomputeOptions } from '../../../src/recompute/recompute';

jest.setTimeout(120_000);

const BASE = Date.UTC(2024, 4, 1, 12);

interface RawEvent {
  event_id: string;
  type: string;
  timestamp: number | string;
  anonymous_id?: string | null;
  user_id?: string | null;
  key_event?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The oracle: the rule read literally. Strings ordered as UTF-8 bytes (as ClickHouse does).
// ---------------------------------------------------------------------------------------------

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const bytesOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const time = (e: RawEvent): number => (typeof e.timestamp === 'number' ? e.timestamp : Date.parse(e.timestamp));

function oracle(events: RawEvent[]): IdentityEntry[] {
  const best = new Map<string, RawEvent>();
  for (const e of events) {
    const anon = text(e.anonymous_id);
    const user = text(e.user_id);
    if (anon === '' || user === '') continue;
    const b = best.get(anon);
    const later =
      b === undefined ||
      time(e) > time(b) ||
      (time(e) === time(b) && (bytesOrder(e.event_id, b.event_id) > 0 || (e.event_id === b.event_id && bytesOrder(user, text(b.user_id)) > 0)));
    if (later) best.set(anon, e);
  }
  return [...best.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) // the sessions' user key order: UTF-16 code units
    .map(([anon, e]) => ({ site: 'default', anonymous_id: anon, user_id: text(e.user_id), linked_at: new Date(time(e)).toISOString() }));
}

// ---------------------------------------------------------------------------------------------
// Generators: few ids and times, so ties, shared devices and duplicates are common.
// ---------------------------------------------------------------------------------------------

const ANON = ['a1', 'a2', 'a3', 'tablet', '😀', '\uffff', 'é'];
const USERS = ['u1', 'u2', 'u3', '', '😀u', '\uffffu'];

const rawEvent: fc.Arbitrary<RawEvent> = fc
  .record({
    id: fc.constantFrom('e1', 'e2', 'e3', 'e4', 'e5', 'e6', '😀', '\uffff'),
    minute: fc.integer({ min: 0, max: 12 }),
    iso: fc.boolean(),
    anon: fc.option(fc.constantFrom(...ANON), { nil: null }),
    user: fc.option(fc.constantFrom(...USERS), { nil: null }),
    key: fc.boolean(),
  })
  .filter(({ anon, user }) => text(anon) !== '' || text(user) !== '') // else invalid: never a link anyway
  .map(({ id, minute, iso, anon, user, key }) => {
    const ts = BASE + minute * 60_000;
    return { event_id: id, type: 'page_view', timestamp: iso ? new Date(ts).toISOString() : ts, anonymous_id: anon, user_id: user, key_event: key };
  });

/** Events, plus a permutation with duplicated lines, plus a chunking and a buffer size. */
const scenario = fc.record({
  events: fc.array(rawEvent, { minLength: 0, maxLength: 60 }),
  seed: fc.integer(),
  duplicates: fc.array(fc.nat(), { maxLength: 10 }),
  chunk: fc.integer({ min: 1, max: 64 }),
  buffer: fc.integer({ min: 1, max: 8 }),
});

function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function chunks(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

function sink(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      into.push(Buffer.from(chunk));
      done();
    },
  });
}

async function identitiesOf(lines: string[], options: Partial<RecomputeOptions> & { chunk?: number } = {}): Promise<{ identities: string; sessions: string; links: number }> {
  const ids: Buffer[] = [];
  const out: Buffer[] = [];
  const input = Readable.from(chunks(lines.map((l) => l + '\n').join(''), options.chunk ?? 1 << 16));
  const stats = await recompute(input, sink(out), { timeoutMs: 30 * 60_000, threads: 0, ...options, identities: sink(ids) });
  return { identities: Buffer.concat(ids).toString('utf8'), sessions: Buffer.concat(out).toString('utf8'), links: stats.links };
}

const parseLines = (text: string): IdentityEntry[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as IdentityEntry);

describe('recompute --identities', () => {
  it('equals the oracle, whatever the order, duplicates, chunking and spilling', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ events, seed, duplicates, chunk, buffer }) => {
        const lines = events.map((e) => JSON.stringify(e));
        const expected = oracle(events);
        const plain = await identitiesOf(lines);
        expect(parseLines(plain.identities)).toEqual(expected);
        expect(plain.links).toBe(expected.length);

        const copies = duplicates.filter(() => lines.length > 0).map((i) => lines[i % lines.length] as string);
        const disordered = await identitiesOf(shuffled([...lines, ...copies], seed), { chunk, maxBufferedEvents: buffer });
        expect(disordered.identities).toBe(plain.identities);
        // The identity lines come from the same pass as the sessions, which stay as they were.
        expect(disordered.sessions).toBe(plain.sessions);
      }),
      { numRuns: 150 },
    );
  });

  it('merges: the maps of any split of the events combine into the map of the whole', () => {
    fc.assert(
      fc.property(fc.array(rawEvent, { maxLength: 60 }), fc.array(fc.nat(3), { maxLength: 60 }), (events, parts) => {
        const parsed = events.map((e) => parseSessionEvent(JSON.stringify(e))).filter((e) => !(e instanceof InvalidEventError));
        const groups: (typeof parsed)[] = [[], [], [], []];
        parsed.forEach((e, i) => (groups[parts[i] ?? 0] as typeof parsed).push(e));
        const partial = groups.flatMap((group) => identityMapOf(group.map((e) => linkOf(e as never))));
        const whole = identityMapOf(parsed.map((e) => linkOf(e as never)));
        expect(identityMapOf(partial)).toEqual(whole);
        // LatestLink, fed one key's events in any order, finds the same as the whole.
        for (const entry of whole) {
          const latest = new LatestLink();
          for (const e of shuffled(parsed, entry.ts)) if (!(e instanceof InvalidEventError) && e.userKey === entry.anonymousId) latest.offer(e);
          expect(latest.take()).toEqual(entry);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same map with worker threads (buckets on disk, merged)', async () => {
    const events = fc.sample(rawEvent, { seed: 7, numRuns: 400 });
    const lines = events.map((e) => JSON.stringify(e));
    const inProcess = await identitiesOf(lines);
    const threaded = await identitiesOf(lines, { threads: 2 });
    expect(threaded.identities).toBe(inProcess.identities);
    expect(parseLines(threaded.identities)).toEqual(oracle(events));
    expect(threaded.links).toBeGreaterThan(3);
  });

  it('lets the latest link by (timestamp, event_id) win on a shared device, whatever arrived last', async () => {
    const at = (minute: number) => new Date(BASE + minute * 60_000).toISOString();
    const lines = [
      { event_id: 'z', type: 'login', timestamp: at(5), anonymous_id: 'tablet', user_id: 'bob' },
      { event_id: 'b', type: 'login', timestamp: at(10), anonymous_id: 'tablet', user_id: 'carol' },
      { event_id: 'a', type: 'login', timestamp: at(10), anonymous_id: 'tablet', user_id: 'dave' }, // same time, smaller id: loses
      { event_id: 'c', type: 'page_view', timestamp: at(1), anonymous_id: 'tablet', user_id: 'alice' }, // arrives last, oldest
    ].map((e) => JSON.stringify(e));
    const { identities } = await identitiesOf(lines);
    expect(parseLines(identities)).toEqual([{ site: 'default', anonymous_id: 'tablet', user_id: 'carol', linked_at: at(10) }]);
  });

  it('links nothing for an empty or missing user_id, nor for a user id alone', async () => {
    const lines = [
      { event_id: '1', type: 'page_view', timestamp: BASE, anonymous_id: 'phone', user_id: '' },
      { event_id: '2', type: 'page_view', timestamp: BASE, anonymous_id: 'phone', user_id: null },
      { event_id: '3', type: 'page_view', timestamp: BASE, anonymous_id: 'phone' },
      { event_id: '4', type: 'purchase', timestamp: BASE, user_id: 'alice', channel: 'store' },
    ].map((e) => JSON.stringify(e));
    const { identities, links } = await identitiesOf(lines);
    expect(identities).toBe('');
    expect(links).toBe(0);
  });
});

describe('compareUtf8', () => {
  it('orders as UTF-8 bytes do', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(bytesOrder(a, b)));
      }),
      { numRuns: 2000 },
    );
    expect(compareUtf8('😀', '\uffff')).toBeGreaterThan(0); // UTF-16 order says the opposite
  });
});

// ---------------------------------------------------------------------------------------------
// Journeys: a phone, a laptop, a shared tablet and a store purchase become one journey.
// ---------------------------------------------------------------------------------------------

describe('person journeys (worked example of docs/sessions.md)', () => {
  const hour = (h: number, m = 0) => new Date(Date.UTC(2024, 4, 1, h, m)).toISOString();
  const at = (h: number, m = 0) => Date.UTC(2024, 4, 1, h, m);
  const events: RawEvent[] = [
    // Monday morning: an ad on the phone, anonymous.
    { event_id: 'p1', type: 'page_view', timestamp: at(8), anonymous_id: 'phone' },
    // Lunch: the laptop, logs in as alice.
    { event_id: 'l1', type: 'page_view', timestamp: at(12), anonymous_id: 'laptop' },
    { event_id: 'l2', type: 'login', timestamp: at(12, 5), anonymous_id: 'laptop', user_id: 'alice' },
    // Evening: the family tablet, bob first, then alice logs in later.
    { event_id: 't1', type: 'login', timestamp: at(18), anonymous_id: 'tablet', user_id: 'bob' },
    { event_id: 't2', type: 'page_view', timestamp: at(21), anonymous_id: 'tablet' },
    { event_id: 't3', type: 'login', timestamp: at(21, 1), anonymous_id: 'tablet', user_id: 'alice' },
    // Later that night, back on the phone: logs in; this claims the morning session too.
    { event_id: 'p2', type: 'login', timestamp: at(23), anonymous_id: 'phone', user_id: 'alice' },
    // Next day: buys in the store, known by user id only.
    { event_id: 's1', type: 'purchase', timestamp: at(23, 50), user_id: 'alice', key_event: true },
  ];

  it('resolves every device to alice except the tablet session bob had before', async () => {
    const { identities, sessions } = await identitiesOf(events.map((e) => JSON.stringify({ ...e, channel: e.user_id && !e.anonymous_id ? 'store' : 'web' })));
    const map = parseLines(identities);
    expect(map).toEqual([
      { site: 'default', anonymous_id: 'laptop', user_id: 'alice', linked_at: hour(12, 5) },
      { site: 'default', anonymous_id: 'phone', user_id: 'alice', linked_at: hour(23) },
      { site: 'default', anonymous_id: 'tablet', user_id: 'alice', linked_at: hour(21, 1) },
    ]);
    const records = parseLines(sessions) as unknown as SessionRecord[];
    const journeys = personSessionsOf(records, identityLookup(map));
    const alice = journeys.filter((s) => s.person_id === 'alice').map((s) => [s.user_key, s.started_at, s.person_session_number]);
    expect(alice).toEqual([
      ['phone', hour(8), 1],
      ['laptop', hour(12), 2],
      ['tablet', hour(21), 3],
      ['phone', hour(23), 4],
      ['alice', hour(23, 50), 5],
    ]);
    // Bob's evening session carries his own user_id, so the later link does not take it.
    expect(journeys.filter((s) => s.person_id === 'bob').map((s) => s.started_at)).toEqual([hour(18)]);
    const previous = journeys.filter((s) => s.person_id === 'alice').map((s) => s.previous_person_session_id);
    expect(previous[0]).toBe('');
    expect(previous.slice(1)).toEqual(journeys.filter((s) => s.person_id === 'alice').slice(0, -1).map((s) => s.session_id));

    const converting = convertingSessionIds(records, events.filter((e) => e.key_event).map((e) => ({ userKey: text(e.anonymous_id) || text(e.user_id), ts: time(e) })));
    const [aliceSummary] = personsOf(journeys, converting).filter((p) => p.person_id === 'alice');
    expect(aliceSummary).toMatchObject({ sessions: 5, converting_sessions: 1, user_keys: 4, channels: ['store', 'web'], first_seen: hour(8) });
  });

  it('keeps two sites with the same ids apart: separate links, sessions and people', async () => {
    const lines = ['shop', 'app'].flatMap((site) => events.map((e) => JSON.stringify({ ...e, site })));
    const { identities, sessions } = await identitiesOf(lines);
    const map = parseLines(identities);
    expect(map.map((e) => [e.site, e.anonymous_id])).toEqual([
      ['app', 'laptop'],
      ['app', 'phone'],
      ['app', 'tablet'],
      ['shop', 'laptop'],
      ['shop', 'phone'],
      ['shop', 'tablet'],
    ]);
    const records = parseLines(sessions) as unknown as SessionRecord[];
    expect(records.map((r) => r.site)).toEqual([...records.map((r) => r.site)].sort()); // sorted by site first
    const journeys = personSessionsOf(records, identityLookup(map));
    const persons = personsOf(journeys, new Set());
    // Each site alone has alice and bob, with the journey of the single-site example.
    expect(persons.map((p) => [p.site, p.person_id, p.sessions])).toEqual([
      ['app', 'alice', 5],
      ['app', 'bob', 1],
      ['shop', 'alice', 5],
      ['shop', 'bob', 1],
    ]);
    const ids = new Set(records.map((r) => r.session_id));
    expect(ids.size).toBe(records.length); // no session id shared between the sites
  });
});
