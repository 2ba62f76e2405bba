/**
 * Property tests: the incremental engine, fed random events in a random arrival order with
 * bounded lateness and random batches, always keeps a consistent output (the "ledger" of written,
 * not yet cancelled rows), and ends with exactly what a small batch oracle computes straight
 * from the session rules. `recompute()` over the same events, in any line order and with or without
 * spilling to disk, must give the same.
 *
 * The oracle below reads the raw events only (it shares no code with src/engine or src/events).
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  applyEvent,
  nextDeadline,
  nextDeadlines,
  newKeyState,
  reconcile,
  type EngineConfig,
  type KeyState,
  type SessionChange,
} from '../../../src/engine/engine';
import { toSessionRecord, type SessionRecord, type SessionRow } from '../../../src/engine/session-row';
import { parseEvent } from '../../../src/events/parse-event';
import type { SessionEvent } from '../../../src/events/session-event';
import { recompute } from '../../../src/recompute/recompute';

const MINUTE = 60_000;
const T = 10 * MINUTE;
/** Half an hour before midnight, so sessions often cross it. */
const BASE = Date.UTC(2024, 4, 1, 23, 30);

interface RawEvent {
  site?: string | null;
  event_id: string;
  type: string;
  timestamp: number | string;
  anonymous_id?: string | null;
  user_id?: string | null;
  name?: string | null;
  channel?: string | null;
  key_event?: boolean | null;
  page?: Record<string, string | null>;
  campaign?: Record<string, string | null>;
  device?: Record<string, string | null>;
  geo?: Record<string, string | null>;
}

// ---------------------------------------------------------------------------------------------
// The oracle: the session rules read literally, over raw events.
// ---------------------------------------------------------------------------------------------

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function eventTime(e: RawEvent): number {
  return typeof e.timestamp === 'number' ? e.timestamp : Date.parse(e.timestamp);
}

function userKeyOf(e: RawEvent): string {
  return text(e.anonymous_id) || text(e.user_id);
}

function siteOf(e: RawEvent): string {
  return text(e.site) || 'default';
}

/** The oracle's own key of a (site, user key) pair: a newline is in neither. */
function pairOf(e: RawEvent): string {
  return `${siteOf(e)}\n${userKeyOf(e)}`;
}

function isView(e: RawEvent): boolean {
  return e.type === 'page_view' || e.type === 'screen_view';
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return '';
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.startsWith('/') ? (url.split(/[?#]/)[0] as string) : '';
  }
}

/** `page.path`, else the path of `page.url`, else `name`, else "". */
function locationOf(e: RawEvent): string {
  return text(e.page?.path) || pathOf(text(e.page?.url)) || text(e.name) || '';
}

function attributionOf(e: RawEvent): Pick<SessionRecord, 'source' | 'medium' | 'campaign' | 'term' | 'content'> {
  const c = e.campaign;
  if (text(c?.source)) {
    return { source: text(c?.source), medium: text(c?.medium), campaign: text(c?.name), term: text(c?.term), content: text(c?.content) };
  }
  const referrerHost = hostOf(text(e.page?.referrer));
  if (referrerHost && referrerHost !== hostOf(text(e.page?.url))) {
    return { source: referrerHost.replace(/^www\./, ''), medium: 'referral', campaign: '', term: '', content: '' };
  }
  return { source: '(direct)', medium: '(none)', campaign: '', term: '', content: '' };
}

/** `user_key|start` for the site default (as before sites), `site|user_key|start` for any other. */
function sessionIdOf(site: string, userKey: string, startMs: number): string {
  const text = site === 'default' ? `${userKey}|${startMs}` : `${site}|${userKey}|${startMs}`;
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

function firstNonEmpty(events: RawEvent[], get: (e: RawEvent) => unknown): string {
  for (const e of events) if (text(get(e))) return text(get(e));
  return '';
}

function sessionRecord(site: string, userKey: string, events: RawEvent[], sessionNumber: number, previousId: string): SessionRecord {
  const first = events[0] as RawEvent;
  const last = events[events.length - 1] as RawEvent;
  const start = eventTime(first);
  const end = eventTime(last);
  const views = events.filter(isView);
  const duration = end - start;
  const engaged = duration >= 10_000 || views.length >= 2 || events.some((e) => e.key_event === true) ? 1 : 0;
  const attribution = attributionOf(first);
  return {
    site,
    session_id: sessionIdOf(site, userKey, start),
    user_key: userKey,
    anonymous_id: firstNonEmpty(events, (e) => e.anonymous_id),
    user_id: firstNonEmpty([...events].reverse(), (e) => e.user_id),
    started_at: new Date(start).toISOString(),
    ended_at: new Date(end).toISOString(),
    duration_ms: duration,
    events: events.length,
    views: views.length,
    entry_page: views.length > 0 ? locationOf(views[0] as RawEvent) : '',
    exit_page: views.length > 0 ? locationOf(views[views.length - 1] as RawEvent) : '',
    ...attribution,
    channel: (text(first.channel) || 'web') as SessionRecord['channel'],
    device_type: firstNonEmpty(events, (e) => e.device?.type),
    os: firstNonEmpty(events, (e) => e.device?.os),
    browser: firstNonEmpty(events, (e) => e.device?.browser),
    app_version: firstNonEmpty(events, (e) => e.device?.app_version),
    country: firstNonEmpty(events, (e) => e.geo?.country),
    region: firstNonEmpty(events, (e) => e.geo?.region),
    city: firstNonEmpty(events, (e) => e.geo?.city),
    is_engaged: engaged,
    is_bounce: engaged ? 0 : 1,
    session_number: sessionNumber,
    previous_session_id: previousId,
  };
}

/** All sessions of the events, per (site, user_key), sorted by site, user_key, then started_at. */
function oracle(raws: RawEvent[], timeoutMs: number): SessionRecord[] {
  const byKey = new Map<string, RawEvent[]>();
  for (const e of raws) {
    const key = pairOf(e);
    byKey.set(key, [...(byKey.get(key) ?? []), e]);
  }
  const out: SessionRecord[] = [];
  // "site\nuser" sorts by site first (no site holds a newline, and "\n" is below any site character).
  for (const pair of [...byKey.keys()].sort()) {
    const [site, key] = pair.split('\n') as [string, string];
    const sorted = (byKey.get(pair) as RawEvent[]).sort((a, b) =>
      eventTime(a) !== eventTime(b) ? eventTime(a) - eventTime(b) : a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0,
    );
    const seen = new Set<string>();
    const sessions: RawEvent[][] = [];
    for (const e of sorted) {
      if (seen.has(e.event_id)) continue;
      seen.add(e.event_id);
      const current = sessions[sessions.length - 1];
      const previous = current?.[current.length - 1];
      if (current && previous && eventTime(e) - eventTime(previous) < timeoutMs) current.push(e);
      else sessions.push([e]);
    }
    let previousId = '';
    sessions.forEach((events, i) => {
      const record = sessionRecord(site, key, events, i + 1, previousId);
      out.push(record);
      previousId = record.session_id;
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks cheap enough to run thousands of times per property (jest's expect is not)
// ---------------------------------------------------------------------------------------------

/** `expect(actual).toEqual(expected)`, but only paying for jest's diff when they differ. */
function same<V>(actual: V, expected: V, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) expect({ what, value: actual }).toEqual({ what, value: expected });
}

function check(condition: boolean, message: () => string): void {
  if (!condition) throw new Error(message());
}

// ---------------------------------------------------------------------------------------------
// The ledger: the output as the set of written, not yet cancelled rows.
// ---------------------------------------------------------------------------------------------

class Ledger {
  readonly rows = new Map<string, SessionRow>();
  private readonly highestVersion = new Map<string, number>();

  /** Applies changes one by one, throwing on the first that breaks a ledger rule. */
  apply(changes: SessionChange[]): void {
    for (const change of changes) {
      if (!change.cancel && !change.write) throw new Error(`a ${change.kind} change with neither cancel nor write`);
      if (change.kind === 'retract' && change.write) throw new Error('a retract writes nothing');
      if (change.cancel) {
        const current = this.rows.get(change.cancel.session_id);
        same(change.cancel, current, `cancelled row must be the current row of ${change.cancel.session_id}, version included`);
        this.rows.delete(change.cancel.session_id);
      }
      if (change.write) {
        const id = change.write.session_id;
        if (this.rows.has(id)) throw new Error(`write of ${id} while a row for it stands`);
        const highest = this.highestVersion.get(id) ?? 0;
        if (!(change.write.version > highest)) throw new Error(`write of ${id} v${change.write.version} after v${highest}`);
        this.highestVersion.set(id, change.write.version);
        this.rows.set(id, change.write);
      }
    }
  }

  records(): SessionRecord[] {
    return sortRecords([...this.rows.values()]).map(toSessionRecord);
  }
}

function sortRecords<R extends SessionRecord>(records: R[]): R[] {
  return records.sort((a, b) =>
    a.site !== b.site
      ? a.site < b.site
        ? -1
        : 1
      : a.user_key !== b.user_key
        ? a.user_key < b.user_key
          ? -1
          : 1
        : a.started_at < b.started_at
          ? -1
          : a.started_at > b.started_at
            ? 1
            : 0,
  );
}

/** Every row is open exactly while end + T > watermark. */
function expectOpenFlags(ledger: Ledger, watermark: number): void {
  for (const row of ledger.rows.values()) {
    const open = Date.parse(row.ended_at) + T > watermark ? 1 : 0;
    check(row.is_open === open, () => `row ${row.session_id} has is_open ${row.is_open} at close time ${watermark}: ${JSON.stringify(row)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const identityArb = fc.constantFrom<Pick<RawEvent, 'anonymous_id' | 'user_id'>>(
  { anonymous_id: 'a1' },
  { anonymous_id: 'a1' },
  { anonymous_id: 'a1', user_id: 'u1' },
  { anonymous_id: 'a1', user_id: '' },
  { anonymous_id: 'a2' },
  { anonymous_id: 'a2', user_id: 'u2' },
  { anonymous_id: '', user_id: 'u1' },
  { anonymous_id: null, user_id: 'u3' },
  { user_id: 'a1' }, // key a1 without an anonymous_id
);

const maybe = <V>(...values: V[]) => fc.constantFrom<V | null>(...values, '' as V, null);

/** Several sites with the same ids: absent (default), named default, and two others. */
const siteArb = fc.constantFrom<string | null | undefined>(undefined, undefined, null, 'default', 'shop', 'b.app-2');

const eventArb = fc.record(
  {
    site: siteArb,
    identity: identityArb,
    // a 5-minute grid half of the time, so gaps of exactly T (10 min) are common
    minute: fc.oneof(fc.integer({ min: 0, max: 45 }), fc.integer({ min: 0, max: 9 }).map((m) => 5 * m)),
    jitter: fc.constantFrom(0, 0, 0, 1, -1, 5_000, 9_999, 10_000),
    timestampForm: fc.constantFrom('ms', 'ms', 'iso', 'offset'),
    idPrefix: fc.constantFrom('a', 'b', 'c'),
    type: fc.constantFrom('page_view', 'page_view', 'screen_view', 'click', 'purchase', 'Page_View'),
    name: maybe('Home', 'Cart'),
    channel: fc.constantFrom('web', 'app', 'server', 'store'),
    key_event: fc.constantFrom(true, false, false, null),
    page: fc.record(
      {
        url: maybe('https://shop.example.com/products/1?x=1', 'https://WWW.Shop.example.com/cart#top', '/relative/path?q=1', 'not a url'),
        path: maybe('/home', '/pricing'),
        referrer: maybe(
          'https://www.Google.com/search?q=1',
          'https://shop.example.com/back',
          'https://news.example.org/',
          'android-app://com.example.app',
          'garbage',
        ),
      },
      { requiredKeys: [] },
    ),
    campaign: fc.record(
      { source: maybe('newsletter', 'google'), medium: maybe('email', 'cpc'), name: maybe('spring'), term: maybe('shoes'), content: maybe('banner') },
      { requiredKeys: [] },
    ),
    device: fc.record(
      { type: maybe('mobile', 'desktop'), os: maybe('iOS', 'Linux'), browser: maybe('Safari'), app_version: maybe('1.0', '2.0') },
      { requiredKeys: [] },
    ),
    geo: fc.record({ country: fc.constantFrom('DE', 'US', null), region: maybe('BY', 'CA'), city: maybe('Munich') }, { requiredKeys: [] }),
  },
  { requiredKeys: ['identity', 'minute', 'jitter', 'timestampForm', 'idPrefix', 'type'] },
);

type GeneratedEvent = typeof eventArb extends fc.Arbitrary<infer V> ? V : never;

function formatTimestamp(ms: number, form: string): number | string {
  if (form === 'ms') return ms;
  if (form === 'iso') return new Date(ms).toISOString();
  // the same instant written in UTC+02:00
  return new Date(ms + 2 * 60 * MINUTE).toISOString().replace('Z', '+02:00');
}

/**
 * Turns generated values into raw events with ids unique per (site, user key), plus exact
 * copies. Ids restart in each site, so two sites hold the same event ids for the same user key:
 * a duplicate that leaked from one site to another would lose an event.
 */
function buildEvents(generated: GeneratedEvent[], copies: number[]): RawEvent[] {
  const perKey = new Map<string, number>();
  const events = generated.map((g): RawEvent => {
    const ms = BASE + g.minute * MINUTE + g.jitter;
    const key = `${text(g.site) || 'default'}\n${text(g.identity.anonymous_id) || text(g.identity.user_id)}`;
    const n = (perKey.get(key) ?? 0) + 1;
    perKey.set(key, n);
    const e: RawEvent = { event_id: `${g.idPrefix}${n}`, type: g.type, timestamp: formatTimestamp(ms, g.timestampForm), ...g.identity };
    if (g.site !== undefined) e.site = g.site;
    if (g.name !== undefined) e.name = g.name;
    if (g.channel !== undefined) e.channel = g.channel;
    if (g.key_event !== undefined) e.key_event = g.key_event;
    if (g.page !== undefined) e.page = g.page;
    if (g.campaign !== undefined) e.campaign = g.campaign;
    if (g.device !== undefined) e.device = g.device;
    if (g.geo !== undefined) e.geo = g.geo;
    return e;
  });
  const duplicates = copies.map((i) => structuredClone(events[i % events.length] as RawEvent));
  return [...events, ...duplicates];
}

const eventsArb = fc
  .tuple(fc.array(eventArb, { minLength: 1, maxLength: 30, size: 'max' }), fc.array(fc.nat(), { maxLength: 5 }))
  .map(([generated, copies]) => buildEvents(generated, copies));

interface Scenario {
  events: RawEvent[];
  latenessMs: number;
  /** Events may arrive later than the lateness (they must then be refused as late). */
  allowLate: boolean;
  delays: number[];
  batchSizes: number[];
  /** Per batch: < 30 means also reconcile at a larger watermark, as far as the value says. */
  bumps: number[];
  /** Per batch: < 30 means a wall-clock close bound ahead of the watermark, as far as the value says. */
  closeBounds: number[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    events: eventsArb,
    latenessMs: fc.constantFrom(1, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE),
    allowLate: fc.boolean(),
  })
  .chain(({ events, latenessMs, allowLate }) =>
    fc.record({
      events: fc.constant(events),
      latenessMs: fc.constant(latenessMs),
      allowLate: fc.constant(allowLate),
      delays: fc.array(fc.integer({ min: 0, max: (allowLate ? 3 * latenessMs : latenessMs) - 1 }), {
        minLength: events.length,
        maxLength: events.length,
      }),
      batchSizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: events.length, maxLength: events.length }),
      bumps: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: events.length, maxLength: events.length }),
      closeBounds: fc.array(fc.integer({ min: 0, max: 99 }), { minLength: events.length, maxLength: events.length }),
    }),
  );

// ---------------------------------------------------------------------------------------------
// Running the engine as the worker does
// ---------------------------------------------------------------------------------------------

function toEvent(raw: RawEvent): SessionEvent {
  const parsed = parseEvent(JSON.stringify(raw));
  if (!parsed.ok) throw new Error(`generated an invalid event: ${parsed.error.message} in ${JSON.stringify(raw)}`);
  return parsed.event;
}

/** Checks the rows of the ledger hang together as sessions of their keys (after a reconcile). */
function expectConsistent(ledger: Ledger): void {
  const byKey = new Map<string, SessionRow[]>();
  for (const row of ledger.rows.values()) {
    const pair = `${row.site}\n${row.user_key}`;
    byKey.set(pair, [...(byKey.get(pair) ?? []), row]);
  }
  for (const [pair, rows] of byKey) {
    sortRecords(rows).forEach((row, i) => {
      const start = Date.parse(row.started_at);
      const previous = rows[i - 1];
      const where = () => `rows of ${JSON.stringify(pair)}: ${JSON.stringify(rows)}`;
      check(row.session_id === sessionIdOf(row.site, row.user_key, start), where);
      check(row.session_number === i + 1, where);
      check(row.previous_session_id === (previous ? previous.session_id : ''), where);
      check(!previous || start - Date.parse(previous.ended_at) >= T, where);
      check(row.is_bounce === 1 - row.is_engaged, where);
    });
  }
}

function runStreaming(s: Scenario): void {
  const config: EngineConfig = { timeoutMs: T, latenessMs: s.latenessMs };
  // arrival = event time + delay; sorting by it bounds how far any event is behind the max-so-far
  const arrivals = s.events
    .map((raw, i) => ({ raw, pair: pairOf(raw), event: toEvent(raw), arrival: eventTime(raw) + (s.delays[i] as number) }))
    .sort((a, b) => a.arrival - b.arrival);

  const states = new Map<string, KeyState>();
  const ledger = new Ledger();
  const accepted: RawEvent[] = [];
  let watermark = -Infinity;
  let closeBound = -Infinity;

  const reconcileAll = (touched: Set<string>) => {
    for (const [key, state] of states) {
      const { closeAt, forgetAt } = nextDeadlines(state, config);
      same(nextDeadline(state, config), closeAt === null ? forgetAt : forgetAt === null ? closeAt : Math.min(closeAt, forgetAt), 'nextDeadline');
      const changes = reconcile(state, config, watermark, closeBound);
      // a key with no new event and no deadline passed has nothing to say
      const closeDue = closeAt !== null && closeAt <= Math.max(watermark, closeBound);
      const forgetDue = forgetAt !== null && forgetAt <= watermark;
      if (!touched.has(key) && !closeDue) same(changes, [], `changes of ${key}, which had no event and no deadline due`);
      ledger.apply(changes);
      if (forgetDue) check((state.sessions[0]?.summary.endTs ?? Infinity) > forgetAt - T - s.latenessMs, () => `${key}: session due to be forgotten is still held`);
      // reconciling again at the same watermark is a no-op
      same(reconcile(state, config, watermark, closeBound), [], `a second reconcile of ${key}`);
    }
    expectConsistent(ledger);
    expectOpenFlags(ledger, Math.max(watermark, closeBound));
    same(ledger.records(), oracle(accepted, T), 'the output vs the oracle over the accepted events');
  };

  let next = 0;
  for (let batch = 0; next < arrivals.length; batch++) {
    const size = s.batchSizes[batch % s.batchSizes.length] as number;
    const touched = new Set<string>();
    for (const { raw, pair, event } of arrivals.slice(next, next + size)) {
      watermark = Math.max(watermark, event.ts);
      let state = states.get(event.userKey);
      if (!state) states.set(event.userKey, (state = newKeyState(event.userKey)));
      const isCopy = accepted.some((a) => pairOf(a) === pair && a.event_id === event.eventId);
      const outcome = applyEvent(state, event, config, watermark);
      if (isCopy) {
        // a copy is a duplicate while its session is held; once forgotten, it can only be late
        check(outcome === 'duplicate' || (outcome === 'late' && watermark - event.ts >= s.latenessMs + T), () => `copy ${event.eventId} was ${outcome}`);
      } else {
        same(outcome, watermark - event.ts > s.latenessMs ? 'late' : 'applied', `outcome of ${event.eventId} at ${event.ts}, watermark ${watermark}`);
      }
      if (outcome === 'applied') accepted.push(raw);
      touched.add(event.userKey);
    }
    next += size;
    if (!s.allowLate) {
      // nothing is late: every distinct event that arrived so far was applied, once
      same(accepted.length, new Set(arrivals.slice(0, next).map((a) => `${a.pair}\n${a.event.eventId}`)).size, 'accepted events');
    }
    reconcileAll(touched);

    const bump = s.bumps[batch % s.bumps.length] as number;
    if (bump < 30) {
      // A larger watermark closes sessions; without late events allowed it must not pass the
      // earliest pending event by more than the lateness.
      const remaining = arrivals.slice(next).map((a) => a.event.ts);
      const cap = s.allowLate || remaining.length === 0 ? watermark + 3 * T + s.latenessMs : Math.min(...remaining) + s.latenessMs;
      if (cap > watermark) {
        watermark = Math.round(watermark + ((cap - watermark) * bump) / 29);
        reconcileAll(new Set());
      }
    }
    const bound = s.closeBounds[batch % s.closeBounds.length] as number;
    if (bound < 30) {
      // the live worker's wall clock: closes sessions ahead of event time, never goes back
      closeBound = Math.max(closeBound, Math.round(watermark + (2 * T * bound) / 29));
      reconcileAll(new Set());
    }
  }

  watermark = Infinity;
  reconcileAll(new Set());
  for (const row of ledger.rows.values()) same(row.is_open, 0, 'is_open after the final reconcile');
  const expected = oracle(s.allowLate ? accepted : s.events, T);
  expect(ledger.records()).toEqual(expected);
  if (!s.allowLate) same(oracle(accepted, T), oracle(s.events, T), 'accepted vs all events');
}

// ---------------------------------------------------------------------------------------------
// recompute()
// ---------------------------------------------------------------------------------------------

async function runRecompute(lines: string[], maxBufferedEvents?: number) {
  let out = '';
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out += chunk.toString('utf8');
      callback();
    },
  });
  const invalid: number[] = [];
  const stats = await recompute(Readable.from([lines.join('\n')]), output, {
    timeoutMs: T,
    maxBufferedEvents,
    onInvalid: (lineNumber) => {
      invalid.push(lineNumber);
    },
  });
  const records = out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SessionRecord);
  return { records, invalid, stats };
}

/** Lines recompute must skip and report by number, wherever they are. */
const BAD_LINES = ['{"not": "an event"}', 'not json'];

describe('engine properties', () => {
  it('the oracle itself: splits on a gap of exactly T and de-duplicates', () => {
    const e = (id: string, at: number): RawEvent => ({ event_id: id, type: 'page_view', timestamp: BASE + at, anonymous_id: 'k' });
    const sessions = oracle([e('x', T - 1), e('y', 0), e('z', 2 * T - 1), e('x', T - 1)], T);
    expect(sessions.map((s) => [s.events, s.duration_ms])).toEqual([
      [2, T - 1],
      [1, 0],
    ]);
  });

  it('streaming with bounded lateness, random batches and watermarks keeps a valid ledger equal to the batch oracle', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => {
        runStreaming(scenario);
      }),
      { numRuns: 1500 },
    );
  }, 60_000);

  it('recompute() of the events in any line order, spilled or not, equals the batch oracle', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventsArb.chain((events) =>
          fc.record({
            events: fc.constant(events),
            lines: fc.shuffledSubarray([...events.map((e) => JSON.stringify(e)), ...BAD_LINES], {
              minLength: events.length + BAD_LINES.length,
              maxLength: events.length + BAD_LINES.length,
            }),
          }),
        ),
        async ({ events, lines }) => {
          const expected = oracle(events, T);
          const badLines = lines.flatMap((line, i) => (BAD_LINES.includes(line) ? [i + 1] : []));
          for (const maxBufferedEvents of [undefined, 7]) {
            const { records, invalid, stats } = await runRecompute(lines, maxBufferedEvents);
            expect(records).toEqual(expected);
            expect(invalid).toEqual(badLines);
            expect(stats.sessions).toBe(expected.length);
            if (maxBufferedEvents === 7) expect(stats.spilledRuns).toBe(Math.floor(events.length / 7));
          }
        },
      ),
      { numRuns: 400 },
    );
  }, 60_000);

  it("recompute() over several sites: each site's sessions are exactly those of its events alone", async () => {
    // Same user ids and the same event ids in every site (see buildEvents): any state, duplicate
    // or numbering shared between sites would change a site's sessions.
    await fc.assert(
      fc.asyncProperty(eventsArb, async (events) => {
        const { records } = await runRecompute(events.map((e) => JSON.stringify(e)));
        const sites = [...new Set(events.map(siteOf))].sort();
        expect([...new Set(records.map((r) => r.site))]).toEqual(sites); // sorted by site first
        for (const site of sites) {
          const alone = await runRecompute(events.filter((e) => siteOf(e) === site).map((e) => JSON.stringify(e)));
          same(records.filter((r) => r.site === site), alone.records, `the sessions of site ${site}`);
        }
      }),
      { numRuns: 200 },
    );
  }, 60_000);
});
