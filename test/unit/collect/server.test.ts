/**
 * The collector's HTTP API through fastify's inject: Segment's routes and answers, write keys,
 * size limits, gzip, malformed input, bots, rate limits, and 503 when delivery cannot promise.
 */
import { gzipSync } from 'node:zlib';
import type { VisitorIds } from '../../../src/collect/visitor-ids';
import { AUTH, CHROME_MAC, KEY, metricValue, testApp, type TestApp } from '../../support/collect-app';

const track = (extra: Record<string, unknown> = {}) => ({
  event: 'Signed Up',
  messageId: 'm-1',
  anonymousId: 'a-1',
  timestamp: '2026-03-01T10:00:00.000Z',
  properties: { plan: 'pro' },
  ...extra,
});

describe('collector HTTP API', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(async () => {
    await t.app.close();
  });

  it('accepts a track call with Basic auth and answers like Segment', async () => {
    const res = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH, 'user-agent': CHROME_MAC }, payload: track() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ success: true });
    const [event] = t.sender.events();
    expect(event).toMatchObject({ event_id: 'm-1', type: 'track', name: 'Signed Up', anonymous_id: 'a-1', device: { browser: 'Chrome', os: 'macOS', type: 'desktop' } });
    expect(t.sender.sent[0]?.key).toBe('a-1');
  });

  it('serves every call type and a batch', async () => {
    for (const type of ['page', 'screen', 'identify', 'group', 'alias']) {
      const body = type === 'alias' ? { messageId: `m-${type}`, userId: 'u-1', previousId: 'a-1' } : { messageId: `m-${type}`, userId: 'u-1', name: 'Home', groupId: 'g' };
      const res = await t.call({ method: 'POST', url: `/v1/${type}`, headers: { authorization: AUTH }, payload: body });
      expect([type, res.statusCode]).toEqual([type, 200]);
    }
    const batch = { batch: [track({ type: 'track', messageId: 'b-1' }), { type: 'page', messageId: 'b-2', userId: 'u-2', name: 'Cart' }] };
    const res = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: batch });
    expect(res.statusCode).toBe(200);
    expect(t.sender.events().map((e) => e.type)).toEqual(['page_view', 'screen_view', 'identify', 'group', 'alias', 'track', 'page_view']);
  });

  it('takes the write key from the body too (what sendBeacon can send), as text/plain', async () => {
    const res = await t.call({ method: 'POST', url: '/v1/track', headers: { 'content-type': 'text/plain;charset=UTF-8' }, payload: JSON.stringify(track({ writeKey: KEY })) });
    expect(res.statusCode).toBe(200);
  });

  it('answers 401 to a missing or unknown write key, and sends nothing', async () => {
    const missing = await t.call({ method: 'POST', url: '/v1/track', payload: track() });
    const wrong = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: `Basic ${Buffer.from('nope:').toString('base64')}` }, payload: track() });
    expect([missing.statusCode, wrong.statusCode]).toEqual([401, 401]);
    expect(wrong.json()).toEqual({ success: false, message: 'missing or unknown write key' });
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_rejections_total', { reason: 'auth' })).toBe(2);
  });

  it('answers 400 to malformed JSON, a non-object and an invalid message', async () => {
    const bad = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH, 'content-type': 'application/json' }, payload: '{"event": ' });
    const array = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: { batch: [1] } });
    const invalid = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: track({ timestamp: 'yesterday' }) });
    expect([bad.statusCode, array.statusCode, invalid.statusCode]).toEqual([400, 400, 400]);
    expect(invalid.json().message).toMatch(/timestamp/);
    expect(t.sender.sent).toHaveLength(0);
  });

  it('refuses a whole batch when one message is invalid (nothing half-accepted)', async () => {
    const res = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: { batch: [track({ type: 'track' }), { type: 'track', event: 'x' }] } });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^message 1:/);
    expect(t.sender.sent).toHaveLength(0);
  });

  it('answers 413 beyond 32 KB per message and 500 KB per batch', async () => {
    const big = 'x'.repeat(33 * 1024);
    const single = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: track({ properties: { big } }) });
    const inBatch = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: { batch: [track({ type: 'track', properties: { big } })] } });
    const batch = Array.from({ length: 20 }, (_, i) => track({ type: 'track', messageId: `m-${i}`, properties: { pad: 'y'.repeat(30 * 1024) } }));
    const whole = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: { batch } });
    expect([single.statusCode, inBatch.statusCode, whole.statusCode]).toEqual([413, 413, 413]);
    expect(t.sender.sent).toHaveLength(0);
  });

  it('inflates gzip bodies, and applies the limits to the inflated size', async () => {
    const ok = await t.call({
      method: 'POST',
      url: '/v1/track',
      headers: { authorization: AUTH, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: gzipSync(JSON.stringify(track())),
    });
    expect(ok.statusCode).toBe(200);
    // 1 MB of zeros compresses to ~1 KB: a gzip bomb must still hit the 500 KB limit.
    const bomb = gzipSync(JSON.stringify({ batch: [], pad: '0'.repeat(1024 * 1024) }));
    expect(bomb.length).toBeLessThan(8 * 1024);
    const res = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH, 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: bomb });
    expect(res.statusCode).toBe(413);
    const broken = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH, 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: 'not gzip' });
    expect(broken.statusCode).toBe(400);
  });

  it('counts known bots and does not sessionize them', async () => {
    const res = await t.call({
      method: 'POST',
      url: '/v1/page',
      headers: { authorization: AUTH, 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' },
      payload: { messageId: 'p-1', anonymousId: 'a-1', name: 'Home' },
    });
    expect(res.statusCode).toBe(200);
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_bot_events_total')).toBe(1);
  });

  it('refuses messages without an id when cookieless ids are off', async () => {
    const { anonymousId: _a, ...anonymous } = track();
    const res = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: anonymous });
    expect(res.statusCode).toBe(400);
  });

  it('answers 503 with Retry-After when Kafka fails, and until the cool-down ends', async () => {
    t.sender.failing = true;
    const first = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: track() });
    expect(first.statusCode).toBe(503);
    expect(first.headers['retry-after']).toBe('5');
    t.sender.failing = false;
    const second = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: track() });
    expect(second.statusCode).toBe(503);
    expect(t.sender.sends).toBe(1);
    expect(await metricValue(t.metrics, 'sessionizer_collect_events_total', { type: 'track', outcome: 'refused' })).toBe(2);
  });

  it('answers a CORS preflight from any origin, without credentials', async () => {
    const res = await t.call({
      method: 'OPTIONS',
      url: '/v1/batch',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-headers']).toMatch(/authorization/);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    const post = await t.call({ url: '/v1/track', headers: { authorization: AUTH, origin: 'https://shop.example' }, payload: track() });
    expect(post.headers['access-control-allow-origin']).toBe('*');
  });

  it('serves /s.js, gzipped when asked, with an ETag', async () => {
    const res = await t.call({ method: 'GET', url: '/s.js', headers: { 'accept-encoding': 'gzip' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['content-type']).toMatch(/javascript/);
    const again = await t.call({ method: 'GET', url: '/s.js', headers: { 'if-none-match': String(res.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });
});

describe('cookieless ids unavailable', () => {
  it('answers 503 with Retry-After when no visitor id can be made (Redis away), and sends nothing', async () => {
    const failing = { idFor: async () => Promise.reject(new Error('Connection is closed.')) } as unknown as VisitorIds;
    const t = await testApp({ cookieless: true }, { visitorIds: failing });
    try {
      const { anonymousId: _a, ...anonymous } = track();
      const res = await t.call({ url: '/v1/track', headers: { authorization: AUTH }, payload: anonymous });
      expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '5']);
      expect(t.sender.sent).toHaveLength(0);
    } finally {
      await t.app.close();
    }
  });
});

describe('key events', () => {
  it('marks configured track names as key events (KEY_EVENTS)', async () => {
    const t = await testApp({}, { keyEvents: ['Signed Up'] });
    try {
      await t.call({ url: '/v1/track', headers: { authorization: AUTH }, payload: track() });
      await t.call({ url: '/v1/track', headers: { authorization: AUTH }, payload: track({ event: 'Other', messageId: 'm-2' }) });
      expect(t.sender.events().map((e) => e.key_event === true)).toEqual([true, false]);
    } finally {
      await t.app.close();
    }
  });
});

describe('queue bound', () => {
  it('answers 503 queue full when the events waiting for Kafka would pass the bound', async () => {
    const t = await testApp({ queueMaxEvents: 3 });
    try {
      t.sender.delayMs = 300;
      const batch = (n: number, from: number) => ({ batch: Array.from({ length: n }, (_, i) => track({ type: 'track', messageId: `q-${from + i}` })) });
      const first = t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: batch(2, 0) });
      await new Promise((r) => setTimeout(r, 50));
      const second = await t.call({ method: 'POST', url: '/v1/batch', headers: { authorization: AUTH }, payload: batch(2, 2) });
      expect(second.statusCode).toBe(503);
      expect((await first).statusCode).toBe(200);
      expect(t.sender.sent).toHaveLength(2);
    } finally {
      await t.app.close();
    }
  });
});

describe('rate limits', () => {
  it('answers 429 past the per-IP limit, with Retry-After', async () => {
    const t = await testApp({ rateLimit: { windowMs: 60_000, perKey: 0, perIp: 3 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH }, payload: track({ messageId: `r-${i}` }) });
        codes.push(res.statusCode);
        if (res.statusCode === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      expect(codes).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await t.app.close();
    }
  });

  it('ignores X-Forwarded-For from a client that is not a trusted proxy', async () => {
    const t = await testApp({ rateLimit: { windowMs: 60_000, perKey: 0, perIp: 1 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await t.call({ url: '/v1/track', headers: { authorization: AUTH, 'x-forwarded-for': `203.0.113.${i + 1}` }, payload: track({ messageId: `x-${i}` }) });
        codes.push(res.statusCode);
      }
      // Both count against the socket's address: a forged header buys no second allowance.
      expect(codes).toEqual([200, 429]);
    } finally {
      await t.app.close();
    }
  });

  it('answers 429 past the per-key limit, whatever the IP', async () => {
    const t = await testApp({ rateLimit: { windowMs: 60_000, perKey: 2, perIp: 0 }, trustedProxies: ['127.0.0.1'] });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) {
        // Behind a trusted proxy, X-Forwarded-For names the client: three different ones.
        const res = await t.call({ method: 'POST', url: '/v1/track', headers: { authorization: AUTH, 'x-forwarded-for': `203.0.113.${i + 1}` }, payload: track({ messageId: `k-${i}` }) });
        codes.push(res.statusCode);
      }
      expect(codes).toEqual([200, 200, 429]);
    } finally {
      await t.app.close();
    }
  });
});

describe('sites', () => {
  it('stamps every event with the site of its write key; two keys of one site give that site, and the cookieless hash uses it', async () => {
    const seen: Array<[string, string]> = [];
    const ids = { idFor: async (site: string, ip: string) => (seen.push([site, ip]), `c-${site}`) } as unknown as VisitorIds;
    const keys = new Map([
      ['wk_web', 'shop'],
      ['wk_till', 'shop'],
      ['wk_blog', 'blog'],
    ]);
    const t = await testApp({ writeKeys: keys, cookieless: true }, { visitorIds: ids });
    try {
      const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
      await t.call({ url: '/v1/page', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ writeKey: 'wk_web', messageId: 'w-1', name: 'Home' }) });
      await t.call({ url: '/v1/batch', headers: { authorization: basic('wk_till') }, payload: { batch: [track({ type: 'track', messageId: 't-1', userId: 'member-1' })] } });
      await t.call({ url: '/v1/track', headers: { authorization: basic('wk_blog') }, payload: track({ messageId: 'b-1' }) });
      expect(t.sender.events().map((e) => [e.event_id, e.site])).toEqual([
        ['w-1', 'shop'],
        ['t-1', 'shop'],
        ['b-1', 'blog'],
      ]);
      // The id of the cookieless page view was made with the stamped site, not the key.
      expect(seen).toEqual([['shop', '127.0.0.1']]);
      expect(t.sender.events()[0]?.anonymous_id).toBe('c-shop');
      // The write key (a secret) is in no event.
      expect(JSON.stringify(t.sender.sent)).not.toMatch(/wk_/);
    } finally {
      await t.app.close();
    }
  });
});

describe('bodies that are not UTF-8', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp();
  });
  afterEach(async () => {
    await t.app.close();
  });

  // `"event":"bad\xff\xfename"`: Node's decoder would make it "bad\ufffd\ufffdname" and pass it on.
  const badTrack = () => {
    const text = JSON.stringify(track({ event: 'bad@@name' }));
    const at = text.indexOf('@@');
    return { bytes: Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(at + 2))]), offset: Buffer.byteLength(text.slice(0, at)) };
  };

  it('answers 400 naming the byte offset, on a single call and in a batch, and sends nothing', async () => {
    const { bytes, offset } = badTrack();
    const single = await t.call({ url: '/v1/track', headers: { authorization: AUTH, 'content-type': 'application/json' }, payload: bytes });
    expect(single.statusCode).toBe(400);
    expect(single.json()).toEqual({ success: false, message: `the body is not valid UTF-8 (byte 0xff at offset ${offset})` });
    const batchBytes = Buffer.concat([Buffer.from('{"batch":['), bytes.subarray(0, bytes.length - 1), Buffer.from(',"type":"track"}]}')]);
    const batch = await t.call({ url: '/v1/batch', headers: { authorization: AUTH, 'content-type': 'application/json' }, payload: batchBytes });
    expect(batch.statusCode).toBe(400);
    expect(batch.json().message).toBe(`the body is not valid UTF-8 (byte 0xff at offset ${offset + '{"batch":['.length})`);
    expect(t.sender.sent).toHaveLength(0);
    expect(await metricValue(t.metrics, 'sessionizer_collect_rejections_total', { reason: 'malformed' })).toBe(2);
  });

  it('checks gzip bodies after inflating them (the offset is in the inflated bytes)', async () => {
    const { bytes, offset } = badTrack();
    const res = await t.call({ url: '/v1/track', headers: { authorization: AUTH, 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: gzipSync(bytes) });
    expect([res.statusCode, res.json().message]).toEqual([400, `the body is not valid UTF-8 (byte 0xff at offset ${offset})`]);
    expect(t.sender.sent).toHaveLength(0);
  });

  it('still takes valid multi-byte UTF-8 as it is', async () => {
    const res = await t.call({ url: '/v1/track', headers: { authorization: AUTH, 'content-type': 'application/json' }, payload: Buffer.from(JSON.stringify(track({ event: 'Café ☕ 𝄞' }))) });
    expect(res.statusCode).toBe(200);
    expect(t.sender.events()[0]?.name).toBe('Café ☕ 𝄞');
  });
});
