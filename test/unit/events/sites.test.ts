/**
 * Sites: the event field and where else a site comes from (a topic, a Segment message), the
 * visitor key every per-visitor rule runs on, and the session ids of the site `default`, which
 * must stay what they were before sites existed.
 */
import { createHash } from 'node:crypto';
import { loadConfig } from '../../../src/config';
import { sessionIdOf, sessionRowOf } from '../../../src/engine/session-row';
import { applyEvent, newKeyState, reconcile } from '../../../src/engine/engine';
import { parseEvent, parseEventFields, parseSessionEvent } from '../../../src/events/parse-event';
import { parseSegmentEvent } from '../../../src/events/segment';
import { compareVisitorKeys, sessionIdText, siteOfKey, splitVisitorKey, userKeyOfKey, visitorKeyOf } from '../../../src/events/visitor-key';
import { planBatch, type IncomingMessage } from '../../../src/worker/batch-plan';

const event = { event_id: 'e-1', type: 'page_view', timestamp: 1714527681808, anonymous_id: 'anon-1513' };

describe('session ids', () => {
  it('of the site default are those from before sites (an id a stored state of that release holds)', () => {
    // test/unit/state/codec.test.ts loads the state this id comes from, as that release stored it.
    expect(sessionIdOf('anon-1513', 1714527681808)).toBe('10b9f524388c332ffe8fc54373389728');
    expect(sessionIdOf(visitorKeyOf('default', 'anon-1513'), 1714527681808)).toBe('10b9f524388c332ffe8fc54373389728');
  });

  it('of another site hash site|user_key|started_at_ms', () => {
    const expected = createHash('sha256').update('shop|anon-1513|1714527681808').digest('hex').slice(0, 32);
    expect(sessionIdOf(visitorKeyOf('shop', 'anon-1513'), 1714527681808)).toBe(expected);
    expect(expected).not.toBe('10b9f524388c332ffe8fc54373389728');
  });

  it('come out of the engine that way, with the row carrying site and the plain user key', () => {
    for (const site of ['default', 'shop']) {
      const parsed = parseSessionEvent(JSON.stringify({ ...event, site }));
      if (parsed instanceof Error) throw parsed;
      const state = newKeyState(parsed.userKey);
      applyEvent(state, parsed, { timeoutMs: 1_800_000, latenessMs: Infinity }, parsed.ts);
      const [change] = reconcile(state, { timeoutMs: 1_800_000, latenessMs: Infinity }, Infinity);
      expect(change?.write).toMatchObject({ site, user_key: 'anon-1513', session_id: sessionIdOf(visitorKeyOf(site, 'anon-1513'), 1714527681808) });
    }
  });
});

describe('visitor keys', () => {
  it('are the user key itself for the site default, and split back for any site', () => {
    expect(visitorKeyOf('default', 'u')).toBe('u');
    for (const [site, user] of [['default', 'u'], ['shop', 'u'], ['a.b-c_d', 'x|y']] as const) {
      const key = visitorKeyOf(site, user);
      expect(splitVisitorKey(key)).toEqual({ site, userKey: user });
      expect([siteOfKey(key), userKeyOfKey(key)]).toEqual([site, user]);
    }
    expect(sessionIdText(visitorKeyOf('shop', 'u'))).toBe('shop|u');
  });

  it('order by site, then user key (the order of recompute output)', () => {
    const keys = [visitorKeyOf('shop', 'a'), 'zed', visitorKeyOf('app', 'z'), 'b', visitorKeyOf('default', 'a'), visitorKeyOf('shop', 'A')];
    const pairs = [...keys].sort(compareVisitorKeys).map((k) => [siteOfKey(k), userKeyOfKey(k)]);
    expect(pairs).toEqual([['app', 'z'], ['default', 'a'], ['default', 'b'], ['default', 'zed'], ['shop', 'A'], ['shop', 'a']]);
  });

  it('row of a session splits the key without a new string for the default site', () => {
    const parsed = parseSessionEvent(JSON.stringify(event));
    if (parsed instanceof Error) throw parsed;
    expect(parsed.userKey).toBe('anon-1513');
    const state = newKeyState(parsed.userKey);
    applyEvent(state, parsed, { timeoutMs: 1, latenessMs: Infinity }, parsed.ts);
    const summary = state.sessions[0]?.summary;
    if (!summary) throw new Error('no session');
    expect(sessionRowOf(parsed.userKey, summary, 1, '', 0, 1)).toMatchObject({ site: 'default', user_key: 'anon-1513' });
  });
});

describe('the site field', () => {
  it('is optional (default), and a site of 1-64 of a-z 0-9 . _ - starting with a letter or digit is accepted', () => {
    for (const site of [undefined, null, 'default', 'a', '0', 'shop.example-1_x', 'a'.repeat(64)]) {
      const parsed = parseEvent(JSON.stringify({ ...event, site }));
      expect(parsed.ok).toBe(true);
      if (parsed.ok) expect(siteOfKey(parsed.event.userKey)).toBe(site ?? 'default');
    }
  });

  it('rejects anything else, naming the field and the rule', () => {
    for (const site of ['', 'Shop', '-shop', '.x', 'a'.repeat(65), 'a b', 'é', 'a|b', 'a\u0000b', 7, true, {}]) {
      const parsed = parseEvent(JSON.stringify({ ...event, site }));
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.error.field).toBe('site');
    }
  });

  it('rejects ids holding U+0000, with the reason', () => {
    for (const ids of [{ anonymous_id: 'a\u0000b' }, { anonymous_id: 'a', user_id: '\u0000' }, { anonymous_id: null, user_id: 'u\u0000' }]) {
      const parsed = parseEvent(JSON.stringify({ ...event, ...ids }));
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.error.message).toMatch(/U\+0000/);
    }
  });

  it("wins over the topic's site, which applies to events that name none", () => {
    const own = parseEventFields(JSON.stringify({ ...event, site: 'mine' }), undefined, 'topic-site');
    const none = parseEventFields(JSON.stringify(event), undefined, 'topic-site');
    if (!own.ok || !none.ok) throw new Error('invalid');
    expect(siteOfKey(own.event.userKey)).toBe('mine');
    expect(siteOfKey(none.event.userKey)).toBe('topic-site');
  });
});

describe('Segment messages', () => {
  const page = { type: 'page', messageId: 'm-1', anonymousId: 'a-1', timestamp: '2024-05-01T12:00:00Z' };

  it("carry their site in context.site, which wins over the topic's; default is left out of the event", () => {
    const cases: Array<[Record<string, unknown>, string | undefined, string | undefined]> = [
      [{ ...page, context: { site: 'shop' } }, 'topic', 'shop'],
      [page, 'topic', 'topic'],
      [page, undefined, undefined],
      [{ ...page, context: { site: 'default' } }, undefined, undefined],
    ];
    for (const [message, topicSite, site] of cases) {
      const parsed = parseSegmentEvent(JSON.stringify(message), { site: topicSite });
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect(JSON.parse(parsed.raw).site).toBe(site);
      expect(siteOfKey(parsed.event.userKey)).toBe(site ?? 'default');
    }
  });

  it('with an invalid context.site are rejected naming that field', () => {
    const parsed = parseSegmentEvent(JSON.stringify({ ...page, context: { site: 'Not A Site' } }), {});
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.field).toBe('context.site');
  });
});

describe('topic sites', () => {
  const base = { KAFKA_TOPICS: 'events,shop-events', KAFKA_SEGMENT_TOPICS: 'segment' };

  it('KAFKA_TOPIC_SITES ties topics, Segment ones included, to sites', () => {
    const config = loadConfig({ ...base, KAFKA_TOPIC_SITES: 'shop-events:shop, segment:app.b' });
    expect([...config.kafka.topicSites]).toEqual([
      ['shop-events', 'shop'],
      ['segment', 'app.b'],
    ]);
    expect(loadConfig(base).kafka.topicSites.size).toBe(0);
  });

  it('refuses a bad entry, a topic listed twice, or a topic the worker does not read', () => {
    expect(() => loadConfig({ ...base, KAFKA_TOPIC_SITES: 'shop-events' })).toThrow(/KAFKA_TOPIC_SITES.*not topic:site/);
    expect(() => loadConfig({ ...base, KAFKA_TOPIC_SITES: 'shop-events:Shop' })).toThrow(/not topic:site/);
    expect(() => loadConfig({ ...base, KAFKA_TOPIC_SITES: 'shop-events:a,shop-events:b' })).toThrow(/listed twice/);
    expect(() => loadConfig({ ...base, KAFKA_TOPIC_SITES: 'other:shop' })).toThrow(/other is in neither KAFKA_TOPICS nor KAFKA_SEGMENT_TOPICS/);
  });

  it("give a tagged message's events their site (planBatch), the event's own winning, and hand it to the events sink", () => {
    const message = (offset: number, value: object, site?: string): IncomingMessage => ({ offset: String(offset), key: null, value: Buffer.from(JSON.stringify(value)), ...(site ? { site } : {}) });
    const sunk: Array<string | undefined> = [];
    const plan = planBatch(
      [message(0, event, 'shop'), message(1, { ...event, site: 'own' }, 'shop'), message(2, event)],
      -Infinity,
      Infinity,
      (_fields, _ts, _raw, _offset, site) => sunk.push(site),
    );
    expect([...plan.byUser.keys()].map((k) => [siteOfKey(k), userKeyOfKey(k)])).toEqual([
      ['shop', 'anon-1513'],
      ['own', 'anon-1513'],
      ['default', 'anon-1513'],
    ]);
    expect(sunk).toEqual(['shop', 'shop', undefined]);
  });
});
