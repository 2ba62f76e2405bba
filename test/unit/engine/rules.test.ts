/**
 * One small test per session rule, then the streaming behaviour of the incremental engine
 * (out-of-order events, merges, closing, lateness, forgetting, deadlines).
 *
 * Batch results are checked three ways that must agree: the engine fed in the given order, the
 * engine fed in reverse order (both with unlimited lateness, as recompute runs it), and
 * `recompute()` over the events as NDJSON.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
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
import { validateEvent } from '../../../src/events/parse-event';
import type { SessionEvent } from '../../../src/events/session-event';
import { DEFAULT_TIMEOUT_MS, recompute } from '../../../src/recompute/recompute';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const T = DEFAULT_TIMEOUT_MS;
/** 2024-05-01T12:00:00.000Z */
const t0 = Date.UTC(2024, 4, 1, 12, 0, 0);

type RawEvent = Record<string, unknown>;

let idCounter = 0;
/** A raw event as a producer sends it; ids are `e0001`, `e0002`, … in creation order. */
function raw(at: number, fields: RawEvent = {}): RawEvent {
  idCounter += 1;
  return {
    event_id: `e${String(idCounter).padStart(4, '0')}`,
    type: 'page_view',
    timestamp: at,
    anonymous_id: 'anon-1',
    ...fields,
  };
}

function toEvent(r: RawEvent): SessionEvent {
  const parsed = validateEvent(r);
  if (!parsed.ok) throw new Error(`test event is invalid: ${parsed.error.message}`);
  return parsed.event;
}

function expectedId(userKey: string, startedAtMs: number): string {
  return createHash('sha256').update(`${userKey}|${startedAtMs}`, 'utf8').digest('hex').slice(0, 32);
}

/** The output as a set of rows: applies changes, checking each one against the ledger rules. */
class Ledger {
  readonly rows = new Map<string, SessionRow>();
  private readonly highestVersion = new Map<string, number>();

  apply(changes: SessionChange[]): void {
    for (const change of changes) {
      expect(change.cancel ?? change.write).toBeDefined();
      if (change.cancel) {
        expect(this.rows.get(change.cancel.session_id)).toEqual(change.cancel);
        this.rows.delete(change.cancel.session_id);
      }
      if (change.write) {
        const id = change.write.session_id;
        expect(this.rows.has(id)).toBe(false);
        expect(change.write.version).toBeGreaterThan(this.highestVersion.get(id) ?? 0);
        this.highestVersion.set(id, change.write.version);
        this.rows.set(id, change.write);
      }
    }
  }

  records(): SessionRecord[] {
    return sortRecords([...this.rows.values()].map(toSessionRecord));
  }
}

function sortRecords(records: SessionRecord[]): SessionRecord[] {
  return records.sort((a, b) =>
    a.user_key !== b.user_key ? (a.user_key < b.user_key ? -1 : 1) : a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : 0,
  );
}

/** Runs the engine as recompute does (unlimited lateness), feeding events in the given order. */
function engineBatch(raws: RawEvent[], timeoutMs: number): SessionRecord[] {
  const config: EngineConfig = { timeoutMs, latenessMs: Infinity };
  const states = new Map<string, KeyState>();
  const ledger = new Ledger();
  let watermark = -Infinity;
  for (const r of raws) {
    const event = toEvent(r);
    watermark = Math.max(watermark, event.ts);
    let state = states.get(event.userKey);
    if (!state) states.set(event.userKey, (state = newKeyState(event.userKey)));
    applyEvent(state, event, config, watermark);
  }
  for (const state of states.values()) ledger.apply(reconcile(state, config, Infinity));
  return ledger.records();
}

async function recomputeRecords(raws: RawEvent[], timeoutMs: number): Promise<SessionRecord[]> {
  let text = '';
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString('utf8');
      callback();
    },
  });
  const input = Readable.from([raws.map((r) => JSON.stringify(r)).join('\n') + '\n']);
  const stats = await recompute(input, output, { timeoutMs });
  expect(stats.invalid).toBe(0);
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SessionRecord);
}

/** Sessions of the events per the session rules, checked to agree across feeding orders and recompute. */
async function sessionsOf(raws: RawEvent[], timeoutMs = T): Promise<SessionRecord[]> {
  const inOrder = engineBatch(raws, timeoutMs);
  expect(engineBatch([...raws].reverse(), timeoutMs)).toEqual(inOrder);
  expect(await recomputeRecords(raws, timeoutMs)).toEqual(inOrder);
  return inOrder;
}

async function onlySession(raws: RawEvent[], timeoutMs = T): Promise<SessionRecord> {
  const sessions = await sessionsOf(raws, timeoutMs);
  expect(sessions).toHaveLength(1);
  return sessions[0] as SessionRecord;
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('session rules: order and de-duplication', () => {
  it('orders events by (timestamp, event_id): a timestamp tie is broken by event_id', async () => {
    const b = { ...raw(t0), event_id: 'b', page: { path: '/b' }, campaign: { source: 'from-b' } };
    const a = { ...raw(t0), event_id: 'a', page: { path: '/a' }, campaign: { source: 'from-a' } };
    const s = await onlySession([b, a]);
    expect(s.entry_page).toBe('/a');
    expect(s.exit_page).toBe('/b');
    expect(s.source).toBe('from-a');
  });

  it('orders by timestamp before event_id', async () => {
    const late = { ...raw(t0 + SECOND), event_id: 'a', page: { path: '/later' } };
    const early = { ...raw(t0), event_id: 'z', page: { path: '/earlier' } };
    const s = await onlySession([late, early]);
    expect(s.entry_page).toBe('/earlier');
    expect(s.exit_page).toBe('/later');
  });

  it('counts an event_id seen twice once', async () => {
    const e = raw(t0);
    const s = await onlySession([e, raw(t0 + MINUTE), { ...e }]);
    expect(s.events).toBe(2);
    expect(s.views).toBe(2);
  });

  it('counts a duplicate once even when the copies lie a session apart (recompute: de-duplication over the whole key)', async () => {
    // Copies that differ in time: recompute sorts first, so the earlier copy counts, whatever the
    // line order. (The streaming engine keeps whichever copy arrived first.)
    const first = raw(t0, { event_id: 'dup' });
    const copy = raw(t0 + 2 * T, { event_id: 'dup' });
    for (const order of [[first, copy], [copy, first]]) {
      const sessions = await recomputeRecords(order, T);
      expect(sessions.map((s) => [s.started_at, s.events])).toEqual([[iso(t0), 1]]);
    }
    expect(engineBatch([first, copy], T).map((s) => [s.started_at, s.events])).toEqual([[iso(t0), 1]]);
  });

  it('de-duplicates per user key: the same event_id under another key is another event', async () => {
    const sessions = await sessionsOf([raw(t0, { event_id: 'x', anonymous_id: 'k1' }), raw(t0, { event_id: 'x', anonymous_id: 'k2' })]);
    expect(sessions.map((s) => [s.user_key, s.events])).toEqual([
      ['k1', 1],
      ['k2', 1],
    ]);
  });
});

describe('session rules: splitting', () => {
  it('a gap of exactly T starts a new session', async () => {
    const sessions = await sessionsOf([raw(t0), raw(t0 + T)]);
    expect(sessions.map((s) => s.started_at)).toEqual([iso(t0), iso(t0 + T)]);
  });

  it('a gap of T − 1 ms keeps one session', async () => {
    const s = await onlySession([raw(t0), raw(t0 + T - 1)]);
    expect(s.events).toBe(2);
    expect(s.duration_ms).toBe(T - 1);
  });

  it('a gap of T + 1 ms starts a new session', async () => {
    expect(await sessionsOf([raw(t0), raw(t0 + T + 1)])).toHaveLength(2);
  });

  it('T defaults to 30 minutes', async () => {
    expect(DEFAULT_TIMEOUT_MS).toBe(30 * MINUTE);
    expect(await sessionsOf([raw(t0), raw(t0 + 30 * MINUTE - 1)])).toHaveLength(1);
    expect(await sessionsOf([raw(t0), raw(t0 + 30 * MINUTE)])).toHaveLength(2);
  });

  it('T is configurable', async () => {
    const customT = 5 * MINUTE;
    expect(await sessionsOf([raw(t0), raw(t0 + customT - 1)], customT)).toHaveLength(1);
    expect(await sessionsOf([raw(t0), raw(t0 + customT)], customT)).toHaveLength(2);
    // the same 5-minute gap is nothing under the default T
    expect(await sessionsOf([raw(t0), raw(t0 + customT)])).toHaveLength(1);
  });

  it('measures gaps between consecutive events, not from the start', async () => {
    const s = await onlySession([raw(t0), raw(t0 + T - 1), raw(t0 + 2 * (T - 1)), raw(t0 + 3 * (T - 1))]);
    expect(s.duration_ms).toBe(3 * (T - 1));
  });

  it('nothing else splits: not midnight', async () => {
    const beforeMidnight = Date.UTC(2024, 4, 1, 23, 55);
    const s = await onlySession([raw(beforeMidnight), raw(beforeMidnight + 10 * MINUTE)]);
    expect(s.started_at).toBe('2024-05-01T23:55:00.000Z');
    expect(s.ended_at).toBe('2024-05-02T00:05:00.000Z');
  });

  it('nothing else splits: not a campaign change', async () => {
    const s = await onlySession([
      raw(t0, { campaign: { source: 'newsletter', medium: 'email' } }),
      raw(t0 + MINUTE, { campaign: { source: 'google', medium: 'cpc' } }),
    ]);
    expect([s.source, s.medium, s.events]).toEqual(['newsletter', 'email', 2]);
  });

  it('nothing else splits: not a login', async () => {
    const s = await onlySession([raw(t0), raw(t0 + MINUTE, { user_id: 'user-1' })]);
    expect([s.events, s.user_id]).toEqual([2, 'user-1']);
  });

  it('nothing else splits: not a channel or device change', async () => {
    const s = await onlySession([
      raw(t0, { channel: 'web', device: { type: 'desktop' } }),
      raw(t0 + MINUTE, { channel: 'app', device: { type: 'mobile' } }),
    ]);
    expect([s.events, s.channel, s.device_type]).toEqual([2, 'web', 'desktop']);
  });
});

describe('session rules: session_id', () => {
  it('is the first 32 hex characters of sha256(user_key|started_at_ms)', async () => {
    const s = await onlySession([raw(t0 + 123, { anonymous_id: 'visitor-7' }), raw(t0 + MINUTE, { anonymous_id: 'visitor-7' })]);
    expect(s.session_id).toBe(expectedId('visitor-7', t0 + 123));
    expect(s.session_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('uses the user key, which is user_id when there is no anonymous_id', async () => {
    const s = await onlySession([raw(t0, { anonymous_id: undefined, user_id: 'user-9' })]);
    expect(s.user_key).toBe('user-9');
    expect(s.session_id).toBe(expectedId('user-9', t0));
  });

  it('takes the user key from anonymous_id when both ids are set', async () => {
    const s = await onlySession([raw(t0, { anonymous_id: 'anon-2', user_id: 'user-2' })]);
    expect(s.user_key).toBe('anon-2');
    expect(s.session_id).toBe(expectedId('anon-2', t0));
  });

  it('is the same whatever the timestamp form of the first event', async () => {
    const s = await onlySession([raw(t0, { timestamp: '2024-05-01T14:00:00+02:00' })]);
    expect(s.session_id).toBe(expectedId('anon-1', t0));
  });
});

describe('session rules: session fields', () => {
  it('anonymous_id: first non-empty anonymous_id, else ""', async () => {
    // key "k": the first event has only user_id "k", the second anonymous_id "k"
    const s = await onlySession([raw(t0, { anonymous_id: '', user_id: 'k' }), raw(t0 + MINUTE, { anonymous_id: 'k' })]);
    expect([s.user_key, s.anonymous_id]).toEqual(['k', 'k']);
    const none = await onlySession([raw(t0, { anonymous_id: undefined, user_id: 'u' })]);
    expect(none.anonymous_id).toBe('');
  });

  it('user_id: the LAST non-empty user_id, else ""', async () => {
    const s = await onlySession([
      raw(t0, { user_id: 'u1' }),
      raw(t0 + MINUTE, { user_id: 'u2' }),
      raw(t0 + 2 * MINUTE, { user_id: '' }),
      raw(t0 + 3 * MINUTE),
    ]);
    expect(s.user_id).toBe('u2');
    expect((await onlySession([raw(t0), raw(t0 + MINUTE)])).user_id).toBe('');
  });

  it('user_id: a login mid-session attributes the whole session to the user', async () => {
    const s = await onlySession([raw(t0), raw(t0 + MINUTE), raw(t0 + 2 * MINUTE, { user_id: 'logged-in' }), raw(t0 + 3 * MINUTE)]);
    expect([s.anonymous_id, s.user_id, s.events]).toEqual(['anon-1', 'logged-in', 4]);
  });

  it('started_at, ended_at: first and last event time as ISO-8601 UTC with ms; duration_ms is the difference', async () => {
    const s = await onlySession([
      raw(t0, { timestamp: '2024-05-01T14:00:00.123+02:00' }),
      raw(t0, { timestamp: t0 + 5 * MINUTE + 7 }),
    ]);
    expect(s.started_at).toBe('2024-05-01T12:00:00.123Z');
    expect(s.ended_at).toBe('2024-05-01T12:05:00.007Z');
    expect(s.duration_ms).toBe(5 * MINUTE + 7 - 123);
  });

  it('a one-event session lasts 0 ms', async () => {
    const s = await onlySession([raw(t0)]);
    expect([s.started_at, s.ended_at, s.duration_ms]).toEqual([iso(t0), iso(t0), 0]);
  });

  it('events counts all events; views counts page_view and screen_view', async () => {
    const s = await onlySession([
      raw(t0, { type: 'page_view' }),
      raw(t0 + 1, { type: 'screen_view', channel: 'app' }),
      raw(t0 + 2, { type: 'click' }),
      raw(t0 + 3, { type: 'PAGE_VIEW' }),
      raw(t0 + 4, { type: 'purchase', key_event: true }),
    ]);
    expect([s.events, s.views]).toEqual([5, 2]);
  });

  it('entry/exit page: page.path of the first/last view', async () => {
    const s = await onlySession([
      raw(t0, { page: { path: '/home', url: 'https://shop.example/ignored' } }),
      raw(t0 + 1, { page: { path: '/cart' } }),
      raw(t0 + 2, { page: { path: '/checkout' } }),
    ]);
    expect([s.entry_page, s.exit_page]).toEqual(['/home', '/checkout']);
  });

  it('entry/exit page: the path of page.url when there is no page.path', async () => {
    const s = await onlySession([
      raw(t0, { page: { url: 'https://shop.example/products/42?ref=x#top' } }),
      raw(t0 + 1, { page: { path: '', url: 'https://shop.example/cart' } }),
    ]);
    expect([s.entry_page, s.exit_page]).toEqual(['/products/42', '/cart']);
  });

  it('entry/exit page: name when there is neither page.path nor page.url', async () => {
    const s = await onlySession([raw(t0, { type: 'screen_view', name: 'Home' }), raw(t0 + 1, { type: 'screen_view', name: 'Settings' })]);
    expect([s.entry_page, s.exit_page]).toEqual(['Home', 'Settings']);
  });

  it('entry/exit page: "" when the first/last view has no location at all', async () => {
    const s = await onlySession([raw(t0, { page: { path: '/first' } }), raw(t0 + 1, { type: 'page_view' })]);
    expect([s.entry_page, s.exit_page]).toEqual(['/first', '']);
  });

  it('entry/exit page: only views count; "" when the session has no view', async () => {
    const s = await onlySession([
      raw(t0, { type: 'click', page: { path: '/click-before' } }),
      raw(t0 + 1, { page: { path: '/the-view' } }),
      raw(t0 + 2, { type: 'click', page: { path: '/click-after' } }),
    ]);
    expect([s.entry_page, s.exit_page]).toEqual(['/the-view', '/the-view']);
    const noView = await onlySession([raw(t0, { type: 'click', page: { path: '/x' }, name: 'btn' })]);
    expect([noView.entry_page, noView.exit_page, noView.views]).toEqual(['', '', 0]);
  });

  it('attribution: the campaign values of the first event when campaign.source is set; missing values ""', async () => {
    const full = await onlySession([
      raw(t0, {
        campaign: { source: 'newsletter', medium: 'email', name: 'spring', term: 'shoes', content: 'banner' },
        page: { url: 'https://shop.example/', referrer: 'https://google.com/' },
      }),
    ]);
    expect([full.source, full.medium, full.campaign, full.term, full.content]).toEqual(['newsletter', 'email', 'spring', 'shoes', 'banner']);
    const partial = await onlySession([raw(t0, { campaign: { source: 'partner' } })]);
    expect([partial.source, partial.medium, partial.campaign, partial.term, partial.content]).toEqual(['partner', '', '', '', '']);
  });

  it('attribution: campaign values without campaign.source are not a campaign', async () => {
    const s = await onlySession([raw(t0, { campaign: { source: '', medium: 'email', name: 'spring' } })]);
    expect([s.source, s.medium, s.campaign]).toEqual(['(direct)', '(none)', '']);
  });

  it('attribution: a referrer on another host is a referral; host lower-cased with www. removed', async () => {
    const s = await onlySession([raw(t0, { page: { url: 'https://shop.example/a', referrer: 'https://WWW.Google.COM/search?q=x' } })]);
    expect([s.source, s.medium, s.campaign, s.term, s.content]).toEqual(['google.com', 'referral', '', '', '']);
  });

  it('attribution: a referrer on the same host as page.url is direct', async () => {
    const s = await onlySession([raw(t0, { page: { url: 'https://shop.example/b', referrer: 'https://shop.example/a' } })]);
    expect([s.source, s.medium]).toEqual(['(direct)', '(none)']);
  });

  it('attribution: a referrer with a host and no page.url is a referral', async () => {
    const s = await onlySession([raw(t0, { page: { referrer: 'https://news.example.org/story' } })]);
    expect([s.source, s.medium]).toEqual(['news.example.org', 'referral']);
  });

  it('attribution: no campaign and no referrer host is (direct)/(none)', async () => {
    const s = await onlySession([raw(t0), raw(t0 + 1, { page: { url: 'https://shop.example/', referrer: 'not a url' } })]);
    expect([s.source, s.medium, s.campaign, s.term, s.content]).toEqual(['(direct)', '(none)', '', '', '']);
  });

  it('attribution comes from the FIRST event only', async () => {
    const s = await onlySession([
      raw(t0),
      raw(t0 + MINUTE, { campaign: { source: 'later', medium: 'cpc' }, page: { referrer: 'https://other.example/' } }),
    ]);
    expect([s.source, s.medium]).toEqual(['(direct)', '(none)']);
  });

  it('channel: the channel of the first event, web when absent', async () => {
    const app = await onlySession([raw(t0, { channel: 'app' }), raw(t0 + 1, { channel: 'web' })]);
    expect(app.channel).toBe('app');
    const dflt = await onlySession([raw(t0), raw(t0 + 1, { channel: 'store' })]);
    expect(dflt.channel).toBe('web');
  });

  it('device and geo dimensions: the first non-empty value of each, else ""', async () => {
    const s = await onlySession([
      raw(t0, { device: { type: '', os: 'iOS' }, geo: { city: '' } }),
      raw(t0 + 1, { device: { type: 'mobile', os: 'Android', browser: 'Safari' }, geo: { country: 'FR', city: 'Lyon' } }),
      raw(t0 + 2, { device: { type: 'tablet', browser: 'Chrome', app_version: '2.1.0' }, geo: { country: 'DE', region: 'BY', city: 'Munich' } }),
    ]);
    expect([s.device_type, s.os, s.browser, s.app_version, s.country, s.region, s.city]).toEqual([
      'mobile',
      'iOS',
      'Safari',
      '2.1.0',
      'FR',
      'BY',
      'Lyon',
    ]);
    const none = await onlySession([raw(t0)]);
    expect([none.device_type, none.os, none.browser, none.app_version, none.country, none.region, none.city]).toEqual(['', '', '', '', '', '', '']);
  });

  it('is_engaged: a duration of exactly 10000 ms is engaged', async () => {
    const s = await onlySession([raw(t0, { type: 'click' }), raw(t0 + 10_000, { type: 'click' })]);
    expect([s.duration_ms, s.is_engaged, s.is_bounce]).toEqual([10_000, 1, 0]);
  });

  it('is_engaged: 9999 ms with one view and no key event is a bounce', async () => {
    const s = await onlySession([raw(t0), raw(t0 + 9_999, { type: 'click' })]);
    expect([s.duration_ms, s.views, s.is_engaged, s.is_bounce]).toEqual([9_999, 1, 0, 1]);
  });

  it('is_engaged: two views are engaged even at 0 ms', async () => {
    const s = await onlySession([raw(t0), raw(t0, { type: 'screen_view' })]);
    expect([s.duration_ms, s.views, s.is_engaged, s.is_bounce]).toEqual([0, 2, 1, 0]);
  });

  it('is_engaged: a key event is engaged; key_event false is not', async () => {
    const keyed = await onlySession([raw(t0, { type: 'signup', key_event: true })]);
    expect([keyed.is_engaged, keyed.is_bounce]).toEqual([1, 0]);
    const notKeyed = await onlySession([raw(t0, { type: 'signup', key_event: false })]);
    expect([notKeyed.is_engaged, notKeyed.is_bounce]).toEqual([0, 1]);
  });

  it('session_number and previous_session_id number the sessions of a key in order', async () => {
    const sessions = await sessionsOf([
      raw(t0 + 2 * T + 5),
      raw(t0),
      raw(t0 + T),
      raw(t0 + T, { anonymous_id: 'other' }),
    ]);
    expect(sessions.map((s) => [s.user_key, s.session_number, s.previous_session_id])).toEqual([
      ['anon-1', 1, ''],
      ['anon-1', 2, expectedId('anon-1', t0)],
      ['anon-1', 3, expectedId('anon-1', t0 + T)],
      ['other', 1, ''],
    ]);
  });
});

/** A streaming run of one key: events with a watermark, reconciles applied to a checked ledger. */
function streaming(config: EngineConfig, userKey = 'anon-1') {
  const state = newKeyState(userKey);
  const ledger = new Ledger();
  return {
    state,
    ledger,
    apply: (r: RawEvent, watermark: number) => applyEvent(state, toEvent(r), config, watermark),
    reconcile: (watermark: number, closeBound?: number) => {
      const changes = reconcile(state, config, watermark, closeBound);
      ledger.apply(changes);
      return changes;
    },
    row: (startedAtMs: number) => ledger.rows.get(expectedId(userKey, startedAtMs)),
  };
}

/** The whole key state as text (Maps included), to show that nothing in it changed. */
function snapshot(state: KeyState): string {
  return JSON.stringify({ ...state, seen: [...state.seen] });
}

const LIVE: EngineConfig = { timeoutMs: T, latenessMs: 60 * MINUTE };

describe('engine: streaming', () => {
  it('writes a start row (version 1, open) on the first reconcile, and an update for a later event', () => {
    const s = streaming(LIVE);
    expect(s.apply(raw(t0), t0)).toBe('applied');
    const first = s.reconcile(t0);
    expect(first.map((c) => c.kind)).toEqual(['start']);
    expect(first[0]?.write).toMatchObject({ session_id: expectedId('anon-1', t0), is_open: 1, version: 1, events: 1 });
    s.apply(raw(t0 + MINUTE), t0 + MINUTE);
    const second = s.reconcile(t0 + MINUTE);
    expect(second.map((c) => c.kind)).toEqual(['update']);
    expect(second[0]?.write).toMatchObject({ is_open: 1, version: 2, events: 2 });
  });

  it('applies an out-of-order event inside the lateness to its session', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0), t0);
    s.apply(raw(t0 + 10 * MINUTE, { page: { path: '/last' } }), t0);
    s.reconcile(t0 + 10 * MINUTE);
    expect(s.apply(raw(t0 + 5 * MINUTE, { page: { path: '/middle' } }), t0 + 10 * MINUTE)).toBe('applied');
    s.reconcile(t0 + 10 * MINUTE);
    expect(s.row(t0)).toMatchObject({ events: 3, exit_page: '/last', version: 2 });
  });

  it('an out-of-order event before the session start changes the session_id and retracts the old row', () => {
    const s = streaming(LIVE);
    const second = raw(t0, { page: { path: '/second' } });
    const first = raw(t0 - 10 * MINUTE, { page: { path: '/first' }, campaign: { source: 'ad' } });
    s.apply(second, t0);
    s.reconcile(t0);
    const oldRow = s.row(t0);
    expect(oldRow).toBeDefined();
    expect(s.apply(first, t0)).toBe('applied');
    const changes = s.reconcile(t0);
    expect(changes).toEqual([
      { kind: 'retract', cancel: oldRow },
      expect.objectContaining({ kind: 'start', write: expect.objectContaining({ session_id: expectedId('anon-1', t0 - 10 * MINUTE), version: 1 }) }),
    ]);
    expect(s.ledger.records()).toEqual(engineBatch([first, second], T));
    expect(s.ledger.records()[0]).toMatchObject({ entry_page: '/first', exit_page: '/second', source: 'ad', events: 2 });
  });

  it('an event bridging two sessions merges them: the later is retracted, the earlier updated, later numbers shift', () => {
    const s = streaming(LIVE);
    const a = t0;
    const b = t0 + 40 * MINUTE; // 40 min after a: separate
    const c = t0 + 80 * MINUTE; // 40 min after b: separate
    s.apply(raw(a), a);
    s.apply(raw(b), b);
    s.apply(raw(c), c);
    s.reconcile(c);
    expect([...s.ledger.rows.values()].map((r) => r.session_number).sort()).toEqual([1, 2, 3]);
    const rowB = s.row(b) as SessionRow;
    const rowC = s.row(c) as SessionRow;
    expect(rowC.previous_session_id).toBe(rowB.session_id);

    expect(s.apply(raw(a + 20 * MINUTE), c)).toBe('applied'); // 20 min from a and from b
    const changes = s.reconcile(c);
    expect(changes.map((ch) => ch.kind)).toEqual(['retract', 'update', 'update']);
    expect(changes[0]?.cancel).toEqual(rowB);
    expect(s.row(b)).toBeUndefined();
    expect(s.row(a)).toMatchObject({ events: 3, ended_at: iso(b), session_number: 1, version: 2 });
    expect(s.row(c)).toMatchObject({ session_number: 2, previous_session_id: expectedId('anon-1', a), version: 2 });
  });

  it('closes a session exactly when the watermark reaches end + T', () => {
    const s = streaming(LIVE);
    const end = t0 + 5 * MINUTE;
    s.apply(raw(t0), t0);
    s.apply(raw(end), end);
    s.reconcile(end);
    expect(s.reconcile(end + T - 1)).toEqual([]);
    expect(s.row(t0)?.is_open).toBe(1);
    const changes = s.reconcile(end + T);
    expect(changes.map((c) => c.kind)).toEqual(['end']);
    expect(changes[0]?.write).toMatchObject({ is_open: 0, version: 2, events: 2 });
  });

  it('a late event beyond the lateness is reported late and leaves the state unchanged', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0), t0);
    s.reconcile(t0);
    const watermark = t0 + 2 * 60 * MINUTE;
    const before = snapshot(s.state);
    expect(s.apply(raw(watermark - LIVE.latenessMs - 1), watermark)).toBe('late');
    expect(snapshot(s.state)).toBe(before);
    // exactly at the lateness is still accepted
    expect(s.apply(raw(watermark - LIVE.latenessMs), watermark)).toBe('applied');
  });

  it('a duplicate is reported and leaves the state unchanged', () => {
    const s = streaming(LIVE);
    const e = raw(t0);
    s.apply(e, t0);
    s.reconcile(t0);
    const before = snapshot(s.state);
    expect(s.apply({ ...e }, t0)).toBe('duplicate');
    expect(snapshot(s.state)).toBe(before);
    expect(s.reconcile(t0)).toEqual([]);
  });

  it('streaming de-duplication covers only sessions still held: an id of a forgotten session counts again', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0, { event_id: 'same' }), t0);
    s.reconcile(t0);
    const later = t0 + T + LIVE.latenessMs + 10 * MINUTE;
    s.reconcile(later); // forgets the first session
    expect(s.state.forgottenCount).toBe(1);
    expect(s.apply(raw(later, { event_id: 'same' }), later)).toBe('applied');
  });

  it('forgets sessions no accepted event can reach (end + T + lateness ≤ watermark) and keeps numbering them', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0), t0);
    s.reconcile(t0);
    const forgetAt = t0 + T + LIVE.latenessMs;
    s.reconcile(forgetAt - 1);
    expect(s.state.sessions).toHaveLength(1);
    s.reconcile(forgetAt);
    expect(s.state.sessions).toHaveLength(0);
    expect(s.state.seen.size).toBe(0);
    expect(s.state.forgottenCount).toBe(1);
    expect(s.state.forgottenLastId).toBe(expectedId('anon-1', t0));
    expect(s.row(t0)).toMatchObject({ is_open: 0 }); // the closed row stays in the output

    s.apply(raw(forgetAt), forgetAt);
    s.reconcile(forgetAt);
    expect(s.row(forgetAt)).toMatchObject({ session_number: 2, previous_session_id: expectedId('anon-1', t0) });
    s.reconcile(forgetAt + 10 * T + LIVE.latenessMs);
    s.apply(raw(forgetAt + 20 * T), forgetAt + 20 * T);
    s.reconcile(forgetAt + 20 * T);
    expect(s.row(forgetAt + 20 * T)).toMatchObject({ session_number: 3, previous_session_id: expectedId('anon-1', forgetAt) });
  });

  it('reconcile twice with the same watermark changes nothing the second time', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0), t0);
    s.apply(raw(t0 + 40 * MINUTE), t0 + 40 * MINUTE);
    expect(s.reconcile(t0 + 40 * MINUTE).length).toBeGreaterThan(0);
    expect(s.reconcile(t0 + 40 * MINUTE)).toEqual([]);
    expect(s.reconcile(t0 + 80 * MINUTE).length).toBeGreaterThan(0);
    expect(s.reconcile(t0 + 80 * MINUTE)).toEqual([]);
  });

  it('nextDeadline: the earliest close (end + T), then forgetting (end + T + lateness), null when idle', () => {
    const s = streaming(LIVE);
    expect(nextDeadline(s.state, LIVE)).toBeNull();
    s.apply(raw(t0), t0);
    s.apply(raw(t0 + 40 * MINUTE), t0 + 40 * MINUTE);
    s.reconcile(t0 + 40 * MINUTE); // first session closed already, second open
    expect(s.row(t0)?.is_open).toBe(0);
    // forgetting the first (t0 + T + L = t0 + 90 min) comes after closing the second (t0 + 70 min)
    expect(nextDeadline(s.state, LIVE)).toBe(t0 + 40 * MINUTE + T);
    s.reconcile(t0 + 40 * MINUTE + T);
    expect(nextDeadline(s.state, LIVE)).toBe(t0 + T + LIVE.latenessMs);
    s.reconcile(t0 + T + LIVE.latenessMs);
    expect(nextDeadline(s.state, LIVE)).toBe(t0 + 40 * MINUTE + T + LIVE.latenessMs);
    s.reconcile(t0 + 40 * MINUTE + T + LIVE.latenessMs);
    expect(s.state.sessions).toHaveLength(0);
    expect(nextDeadline(s.state, LIVE)).toBeNull();
  });

  it('a close bound (wall clock) closes a session before the watermark reaches end + T, but neither forgets nor makes events late', () => {
    const s = streaming(LIVE);
    s.apply(raw(t0), t0);
    s.reconcile(t0);
    expect(s.reconcile(t0, t0 + T - 1)).toEqual([]);
    const changes = s.reconcile(t0, t0 + T);
    expect(changes.map((c) => c.kind)).toEqual(['end']);
    expect(s.row(t0)).toMatchObject({ is_open: 0, version: 2 });
    expect(s.reconcile(t0, t0 + 10 * T + LIVE.latenessMs)).toEqual([]);
    expect(s.state.sessions).toHaveLength(1); // forgetting follows event time only
    // an event within T of the end still joins (by event time it is neither late nor apart)
    expect(s.apply(raw(t0 + T - 1), t0 + T - 1)).toBe('applied');
    s.reconcile(t0 + T - 1, t0 + 10 * T + LIVE.latenessMs);
    expect(s.row(t0)).toMatchObject({ events: 2, is_open: 0, version: 3 });
  });

  it('nextDeadlines: closeAt is the earliest end + T of an open session, forgetAt the oldest end + T + lateness', () => {
    const s = streaming(LIVE);
    expect(nextDeadlines(s.state, LIVE)).toEqual({ closeAt: null, forgetAt: null });
    s.apply(raw(t0), t0);
    s.apply(raw(t0 + 40 * MINUTE), t0 + 40 * MINUTE);
    s.reconcile(t0 + 40 * MINUTE);
    expect(nextDeadlines(s.state, LIVE)).toEqual({ closeAt: t0 + 40 * MINUTE + T, forgetAt: t0 + T + LIVE.latenessMs });
    s.reconcile(t0 + 40 * MINUTE + T);
    expect(nextDeadlines(s.state, LIVE)).toEqual({ closeAt: null, forgetAt: t0 + T + LIVE.latenessMs });
  });

  it('nextDeadline: with unlimited lateness (recompute) a closed session has no deadline', () => {
    const config: EngineConfig = { timeoutMs: T, latenessMs: Infinity };
    const s = streaming(config);
    s.apply(raw(t0), t0);
    s.reconcile(t0);
    expect(nextDeadline(s.state, config)).toBe(t0 + T);
    s.reconcile(t0 + T);
    expect(nextDeadline(s.state, config)).toBeNull();
  });
});
