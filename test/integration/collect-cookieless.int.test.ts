/**
 * Cookieless ids against the real Redis, through the collector's HTTP API with an injected
 * clock: two visitors behind one IP are two; a visit across midnight UTC keeps its id (one
 * session by the offline recompute); a salt is shared by replicas, made once, and once Redis has
 * deleted it the old id cannot be made again.
 */
import type { Redis } from 'ioredis';
import { cookielessId } from '../../src/collect/cookieless-id';
import { SaltStore } from '../../src/collect/salt-store';
import { VisitorIds } from '../../src/collect/visitor-ids';
import type { RawEvent } from '../../src/loadgen/traffic';
import { AUTH, CHROME_MAC, testApp, type TestApp } from '../support/collect-app';
import { createRedis, deleteRedisKeys, newRedisPrefix } from '../support';
import { recomputeRecords } from '../support/worker-harness';

const T = 30 * 60_000;

/** Keys matching `pattern`, by SCAN (a shared Redis is not blocked). */
async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys;
}
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const IP = '198.51.100.23';

describe('cookieless ids (Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let clock: number;
  let t: TestApp;

  beforeAll(() => {
    redis = createRedis();
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    prefix = newRedisPrefix('collect');
    clock = Date.parse('2026-03-01T23:50:00.000Z');
    const ids = new VisitorIds(new SaltStore(redis, prefix), { timeoutMs: T, now: () => clock });
    // Behind a trusted proxy the test can name the client's IP with X-Forwarded-For.
    t = await testApp({ cookieless: true, trustedProxies: ['127.0.0.1'] }, { visitorIds: ids, now: () => clock });
  });
  afterEach(async () => {
    await t.app.close();
    await deleteRedisKeys(redis, prefix);
  });

  const page = (n: number, ua: string, ip = IP) =>
    t.call({
      url: '/v1/page',
      headers: { authorization: AUTH, 'user-agent': ua, 'x-forwarded-for': ip },
      payload: { messageId: `p-${n}`, name: `Page ${n}`, timestamp: new Date(clock).toISOString() },
    });

  it('tells two visitors behind one IP apart by their User-Agents', async () => {
    expect((await page(1, CHROME_MAC)).statusCode).toBe(200);
    expect((await page(2, FIREFOX)).statusCode).toBe(200);
    expect((await page(3, CHROME_MAC)).statusCode).toBe(200);
    const ids = t.sender.events().map((e) => e.anonymous_id as string);
    expect(ids[0]).toMatch(/^c-[0-9a-f]{32}$/);
    expect(ids[1]).not.toBe(ids[0]);
    expect(ids[2]).toBe(ids[0]);
    expect(new Set(ids).size).toBe(2);
  });

  it('keeps yesterday’s id for a visit that crosses midnight UTC, then starts anew after T', async () => {
    await page(1, CHROME_MAC); // 23:50
    clock = Date.parse('2026-03-01T23:58:00.000Z');
    await page(2, CHROME_MAC);
    clock = Date.parse('2026-03-02T00:10:00.000Z');
    await page(3, CHROME_MAC);
    clock = Date.parse('2026-03-02T00:35:00.000Z'); // still within T of the last view
    await page(4, CHROME_MAC);
    clock = Date.parse('2026-03-02T01:30:00.000Z'); // 55 min idle: a new visit, today's id
    await page(5, CHROME_MAC);
    const events = t.sender.events();
    const ids = events.map((e) => e.anonymous_id);
    expect(ids.slice(0, 4)).toEqual([ids[0], ids[0], ids[0], ids[0]]);
    expect(ids[4]).not.toBe(ids[0]);
    // The offline recompute of the same events: the crossing visit is one session.
    const sessions = await recomputeRecords(events as unknown as RawEvent[]);
    expect(sessions.map((s) => [s.user_key, s.events])).toEqual(
      [
        [ids[0], 4],
        [ids[4], 1],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    // Markers are keyed by the hashed id, never by an address.
    const keys = await scanKeys(redis, `${prefix}*`);
    expect(keys.join(' ')).not.toContain(IP);
    expect(keys.some((k) => k.includes(':collect:seen:c-'))).toBe(true);
  });

  it('does not carry a visitor over midnight when yesterday’s visit ended more than T ago', async () => {
    clock = Date.parse('2026-03-01T23:20:00.000Z');
    await page(1, CHROME_MAC);
    clock = Date.parse('2026-03-02T00:05:00.000Z');
    await page(2, CHROME_MAC);
    const ids = t.sender.events().map((e) => e.anonymous_id);
    expect(ids[1]).not.toBe(ids[0]);
  });

  it('keeps an id the request brings (first-party id mode)', async () => {
    const res = await t.call({ url: '/v1/track', headers: { authorization: AUTH, 'user-agent': CHROME_MAC }, payload: { messageId: 'x', event: 'e', anonymousId: 'device-7' } });
    expect(res.statusCode).toBe(200);
    expect(t.sender.events()[0]?.anonymous_id).toBe('device-7');
  });

  it('makes one salt per day for all replicas, deleted by Redis at the end of the next day', async () => {
    const now = Date.parse('2026-03-01T12:00:00.000Z');
    const replicas = Array.from({ length: 5 }, () => new SaltStore(redis, prefix));
    const salts = await Promise.all(replicas.map((r) => r.saltFor('2026-03-01', now)));
    expect(new Set(salts.map((s) => s.toString('hex'))).size).toBe(1);
    expect(salts[0]).toHaveLength(32);
    const ttl = await redis.pttl(`${prefix}collect:salt:2026-03-01`);
    expect(Math.abs(ttl - (Date.parse('2026-03-03T00:00:00.000Z') - now))).toBeLessThan(5_000);
  });

  it('cannot recompute an id once its salt is gone', async () => {
    // The salt of 2026-03-01 asked for at 23:59:59.5 on 2026-03-02 lives 0.5 s more (real Redis expiry).
    const store = new SaltStore(redis, prefix);
    const salt = await store.saltFor('2026-03-01', Date.parse('2026-03-02T23:59:59.500Z'));
    const id = cookielessId(salt, 'site-1', IP, CHROME_MAC);
    await new Promise((r) => setTimeout(r, 900));
    const anotherReplica = new SaltStore(redis, prefix);
    expect(await anotherReplica.existingSalt('2026-03-01', Date.now())).toBeNull();
    expect(await scanKeys(redis, `${prefix}collect:salt:*`)).toEqual([]);
    // Asking for that day's salt again makes a new one: the same visitor hashes to another id.
    const fresh = await anotherReplica.saltFor('2026-03-01', Date.parse('2026-03-01T12:00:00.000Z'));
    expect(cookielessId(fresh, 'site-1', IP, CHROME_MAC)).not.toBe(id);
  });
});
