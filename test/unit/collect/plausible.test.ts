/**
 * Plausible's Events API: the body read as Plausible reads it (pure), and `POST /api/event` on
 * the collector: sites by declared domain, page views and custom events, engagement pings,
 * undeclared domains, bots, errors in Plausible's shape, text/plain, gzip and UTF-8.
 * The official tracker in a real browser: test/integration/collect-plausible.int.test.ts.
 */
import { gzipSync } from 'node:zlib';
import { parsePlausibleBody, plausibleToSegment } from '../../../src/collect/plausible';
import type { VisitorIds } from '../../../src/collect/visitor-ids';
import { CHROME_MAC, metricValue, testApp, type TestApp } from '../../support/collect-app';

describe('parsePlausibleBody', () => {
  it('reads the one-letter keys the script sends, and the long ones of the API', () => {
    const short = parsePlausibleBody({ n: 'pageview', u: 'https://www.Shop.example/p/1?utm_source=x', d: 'www.shop.example', r: 'https://search.example/', p: { plan: 'pro', n: 3 }, v: 36 });
    const long = parsePlausibleBody({ name: 'pageview', url: 'https://www.Shop.example/p/1?utm_source=x', domain: 'shop.example', referrer: 'https://search.example/', props: { plan: 'pro', n: 3 } });
    const expected = {
      name: 'pageview',
      url: 'https://www.shop.example/p/1?utm_source=x',
      path: '/p/1',
      domains: ['shop.example'],
      referrer: 'https://search.example/',
      props: { plan: 'pro', n: '3' },
    };
    expect(short).toEqual({ ok: true, request: expected });
    expect(long).toEqual({ ok: true, request: expected });
  });

  it('takes the domain from the URL when none is sent, lists of domains, hash paths, revenue and JSON-text props', () => {
    const parsed = parsePlausibleBody({ n: 404, u: 'https://app.example/#/settings', h: 1, p: '{"a":"1","nested":{"x":1},"blank":" "}', $: { amount: '15.99', currency: 'EUR' } });
    expect(parsed).toEqual({ ok: true, request: { name: '404', url: 'https://app.example/#/settings', path: '/#/settings', domains: ['app.example'], props: { a: '1' }, revenue: { amount: '15.99', currency: 'EUR' } } });
    const many = parsePlausibleBody({ n: 'x', u: 'https://a.example/', d: 'a.example, www.b.example,a.example' });
    expect(many.ok && many.request.domains).toEqual(['a.example', 'b.example']);
  });

  it('refuses what Plausible refuses, naming the field', () => {
    expect(parsePlausibleBody({ u: 'https://a.example/', d: 'a.example' })).toEqual({ ok: false, errors: { event_name: ["can't be blank"] } });
    expect(parsePlausibleBody({ n: 'x', d: 'a.example' })).toEqual({ ok: false, errors: { url: ['is required'] } });
    expect(parsePlausibleBody({ n: 'x', u: 'data:text/plain,hi', d: 'a.example' })).toEqual({ ok: false, errors: { url: ['scheme is not allowed'] } });
    expect(parsePlausibleBody({ n: 'x', u: 'not a url', d: 'a.example' })).toEqual({ ok: false, errors: { url: ['must be a valid url'] } });
    expect(parsePlausibleBody({ n: 'x', u: 'https://a.example/', d: ' ' })).toEqual({ ok: false, errors: { domain: ["can't be blank"] } });
    expect(parsePlausibleBody({ n: 'x'.repeat(121), u: 'https://a.example/' })).toMatchObject({ ok: false, errors: { event_name: [expect.stringMatching(/120/)] } });
    expect(parsePlausibleBody({ n: 'x', u: 'https://a.example/', p: { k: 'v'.repeat(2001) } })).toMatchObject({ ok: false, errors: { props: [expect.any(String)] } });
    expect(parsePlausibleBody([1])).toMatchObject({ ok: false, errors: { request: [expect.any(String)] } });
  });

  it('makes a page call of a pageview and a track call of anything else, channel web, at the time of receipt', () => {
    const at = '2026-03-01T10:00:00.000Z';
    const page = parsePlausibleBody({ n: 'pageview', u: 'https://a.example/x', r: 'https://b.example/' });
    const signup = parsePlausibleBody({ n: 'Signup', u: 'https://a.example/x', p: { tier: 'pro' }, $: { amount: 5, currency: 'USD' } });
    if (!page.ok || !signup.ok) throw new Error('parse failed');
    expect(plausibleToSegment(page.request, at)).toEqual({ type: 'page', timestamp: at, context: { channel: 'web', page: { url: 'https://a.example/x', path: '/x', referrer: 'https://b.example/' } } });
    expect(plausibleToSegment(signup.request, at)).toEqual({
      type: 'track',
      event: 'Signup',
      timestamp: at,
      context: { channel: 'web', page: { url: 'https://a.example/x', path: '/x' } },
      properties: { tier: 'pro', revenue: { amount: 5, currency: 'USD' } },
    });
  });
});

describe('POST /api/event', () => {
  let t: TestApp;
  const idsAsked: Array<[string, string, string]> = [];
  const ids = { idFor: async (site: string, ip: string, ua: string) => (idsAsked.push([site, ip, ua]), `c-${site}-visitor`) } as unknown as VisitorIds;
  const NOW = Date.parse('2026-03-01T10:00:00.000Z');
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    t.call({ url: '/api/event', headers: { 'content-type': 'text/plain', 'user-agent': CHROME_MAC, ...headers }, payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });

  beforeEach(async () => {
    idsAsked.length = 0;
    t = await testApp(
      { cookieless: true, plausibleDomains: new Map([['shop.example', 'shop'], ['shop.example.co.uk', 'shop'], ['blog.example', 'blog']]) },
      { visitorIds: ids, now: () => NOW },
    );
  });
  afterEach(async () => {
    await t.app.close();
  });

  it('turns a pageview into a cookieless page view of the domain’s site, channel web, answered 202 ok', async () => {
    const res = await post({ n: 'pageview', u: 'https://www.shop.example/p/1?utm_source=news&utm_medium=email', d: 'shop.example', r: 'https://search.example/', v: 36 }, { origin: 'https://www.shop.example' });
    expect([res.statusCode, res.body, res.headers['content-type']]).toEqual([202, 'ok', 'text/plain; charset=utf-8']);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['x-plausible-dropped']).toBeUndefined();
    const [event] = t.sender.events();
    expect(event).toMatchObject({
      type: 'page_view',
      site: 'shop',
      channel: 'web',
      anonymous_id: 'c-shop-visitor',
      timestamp: '2026-03-01T10:00:00.000Z',
      page: { url: 'https://www.shop.example/p/1?utm_source=news&utm_medium=email', path: '/p/1', referrer: 'https://search.example/' },
      campaign: { source: 'news', medium: 'email' },
      device: { type: 'desktop', os: 'macOS', browser: 'Chrome' },
    });
    expect(String(event?.event_id)).toMatch(/^p-/);
    expect(idsAsked).toEqual([['shop', '127.0.0.1', CHROME_MAC]]);
    expect(t.sender.sent[0]?.key).toBe('c-shop-visitor');
  });

  it('turns any other name into a custom event (track) with its props', async () => {
    const res = await post({ name: 'Signup', url: 'https://blog.example/join', domain: 'blog.example', props: { tier: 'pro' } }, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(202);
    expect(t.sender.events()[0]).toMatchObject({ type: 'track', name: 'Signup', site: 'blog', channel: 'web', properties: { tier: 'pro' } });
  });

  it('ignores engagement pings: 202, counted, nothing sessionized', async () => {
    const res = await post({ n: 'engagement', u: 'https://shop.example/p/1', d: 'shop.example', sd: 40, e: 5200, v: 36 });
    expect([res.statusCode, res.body]).toEqual([202, 'ok']);
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_events_total', { type: 'engagement', outcome: 'ignored' })).toBe(1);
  });

  it('drops the event of an undeclared domain as Plausible does (202, x-plausible-dropped), saying why', async () => {
    const res = await post({ n: 'pageview', u: 'https://other.example/', d: 'other.example' });
    expect([res.statusCode, res.headers['x-plausible-dropped']]).toEqual([202, '1']);
    expect(res.body).toBe('dropped: the domain other.example is not declared in COLLECT_PLAUSIBLE_DOMAINS');
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_rejections_total', { reason: 'unknown_domain' })).toBe(1);
  });

  it('sends one event per site of a domain list; two domains of one site make one; undeclared ones are counted as dropped', async () => {
    const res = await post({ n: 'pageview', u: 'https://shop.example/', d: 'shop.example,shop.example.co.uk,blog.example,other.example' });
    expect([res.statusCode, res.headers['x-plausible-dropped']]).toEqual([202, '1']);
    expect(t.sender.events().map((e) => [e.site, e.anonymous_id])).toEqual([
      ['shop', 'c-shop-visitor'],
      ['blog', 'c-blog-visitor'],
    ]);
  });

  it('drops bots (202, x-plausible-dropped) and counts them', async () => {
    const res = await post({ n: 'pageview', u: 'https://shop.example/', d: 'shop.example' }, { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' });
    expect([res.statusCode, res.headers['x-plausible-dropped']]).toEqual([202, '1']);
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_bot_events_total')).toBe(1);
  });

  it('answers errors in Plausible’s shape: invalid fields, malformed JSON, bytes that are not UTF-8 (also gzipped)', async () => {
    const missing = await post({ n: 'pageview', d: 'shop.example' });
    expect([missing.statusCode, JSON.parse(missing.body)]).toEqual([400, { errors: { url: ['is required'] } }]);
    const malformed = await post('{"n": ');
    expect([malformed.statusCode, JSON.parse(malformed.body)]).toEqual([400, { errors: { request: ['Unable to parse request body as json'] } }]);
    const text = '{"n":"bad@@name","u":"https://shop.example/","d":"shop.example"}';
    const at = text.indexOf('@@');
    const bytes = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(at + 2))]);
    const notUtf8 = await post(bytes);
    expect([notUtf8.statusCode, JSON.parse(notUtf8.body)]).toEqual([400, { errors: { request: [`the body is not valid UTF-8 (byte 0xff at offset ${at})`] } }]);
    const gzipped = await post(gzipSync(bytes), { 'content-encoding': 'gzip' });
    expect([gzipped.statusCode, JSON.parse(gzipped.body)]).toEqual([400, { errors: { request: [`the body is not valid UTF-8 (byte 0xff at offset ${at})`] } }]);
    expect(t.sender.sent).toHaveLength(0);
    const ok = await post(gzipSync(JSON.stringify({ n: 'pageview', u: 'https://shop.example/', d: 'shop.example' })), { 'content-encoding': 'gzip' });
    expect(ok.statusCode).toBe(202);
  });

  it('answers 503 with Retry-After when Kafka cannot take the event', async () => {
    t.sender.failing = true;
    const res = await post({ n: 'pageview', u: 'https://shop.example/', d: 'shop.example' });
    expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '5']);
    expect(JSON.parse(res.body)).toEqual({ errors: { request: [expect.any(String)] } });
  });
});

describe('POST /api/event and KEY_EVENTS', () => {
  it('makes a custom event whose name is a configured key event a key event', async () => {
    const t = await testApp({ plausibleDomains: new Map([['shop.example', 'shop']]), cookieless: true }, { keyEvents: ['Purchase'], visitorIds: { idFor: async () => 'c-x' } as unknown as VisitorIds });
    try {
      for (const n of ['Purchase', 'Other']) {
        const res = await t.call({ url: '/api/event', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ n, u: 'https://shop.example/', d: 'shop.example' }) });
        expect(res.statusCode).toBe(202);
      }
      expect(t.sender.events().map((e) => [e.name, e.key_event === true])).toEqual([
        ['Purchase', true],
        ['Other', false],
      ]);
    } finally {
      await t.app.close();
    }
  });
});
