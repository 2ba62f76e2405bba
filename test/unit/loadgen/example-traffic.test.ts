/**
 * The shipped examples (examples/events.ndjson): what `npm run generate:examples` writes, every
 * line a valid event, devices that exist (no phone on macOS, no browser in the app), one device
 * and one site per anonymous id, and the story the README and docs tell — people on several
 * devices who log in on some, the app, store purchases, campaigns, several sites, and the ids
 * the docs name.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { validateEvent } from '../../../src/events/parse-event';
import { exampleEvents } from '../../../src/loadgen/example-traffic';
import { recompute } from '../../../src/recompute/recompute';

const REPO = join(__dirname, '..', '..', '..');
const FILE = join(REPO, 'examples', 'events.ndjson');
const text = readFileSync(FILE, 'utf8');
const events = text
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Record<string, unknown> & { device?: Record<string, string>; channel: string });

const siteOf = (e: Record<string, unknown>) => (typeof e.site === 'string' ? e.site : 'default');

/** The operating systems of each device type, and the browsers each OS runs. */
const OS_OF_TYPE: Record<string, string[]> = { mobile: ['iOS', 'Android'], tablet: ['iPadOS', 'Android'], desktop: ['macOS', 'Windows', 'Linux'] };
const BROWSERS_OF_OS: Record<string, string[]> = {
  iOS: ['Safari', 'Chrome'],
  iPadOS: ['Safari', 'Chrome'],
  Android: ['Chrome', 'Samsung Internet', 'Firefox'],
  macOS: ['Safari', 'Chrome', 'Firefox', 'Edge'],
  Windows: ['Chrome', 'Edge', 'Firefox'],
  Linux: ['Chrome', 'Firefox'],
};

describe('examples/events.ndjson', () => {
  it('is what npm run generate:examples writes, and stays a sensible size', () => {
    expect(text).toBe(exampleEvents().map((e) => JSON.stringify(e)).join('\n') + '\n');
    expect(events.length).toBeGreaterThan(1000);
    expect(events.length).toBeLessThan(4000);
  });

  it('holds only valid events', () => {
    const invalid = events.map((e) => validateEvent(e)).filter((r) => !r.ok);
    expect(invalid).toEqual([]);
  });

  it('has devices that exist: type, OS and browser go together; the app has a version and no browser', () => {
    const wrong: string[] = [];
    for (const e of events) {
      const d = e.device;
      if (e.channel === 'store' || e.channel === 'server') {
        if (d !== undefined) wrong.push(`${String(e.event_id)}: a ${e.channel} event with a device`);
        continue;
      }
      if (d === undefined) {
        wrong.push(`${String(e.event_id)}: a ${e.channel} event without a device`);
        continue;
      }
      if (!(OS_OF_TYPE[d.type ?? ''] ?? []).includes(d.os as string)) wrong.push(`${String(e.event_id)}: ${d.type} on ${d.os}`);
      if (e.channel === 'app') {
        if (d.browser !== undefined || d.app_version === undefined || d.type === 'desktop') wrong.push(`${String(e.event_id)}: app on ${JSON.stringify(d)}`);
      } else if (!(BROWSERS_OF_OS[d.os as string] ?? []).includes(d.browser as string)) {
        wrong.push(`${String(e.event_id)}: ${d.browser} on ${d.os}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps one device and one site per anonymous id, and one site per user id', () => {
    const deviceOf = new Map<string, Set<string>>();
    const sitesOf = new Map<string, Set<string>>();
    const add = (map: Map<string, Set<string>>, key: string, value: string) => map.set(key, (map.get(key) ?? new Set()).add(value));
    for (const e of events) {
      if (typeof e.anonymous_id === 'string') {
        add(deviceOf, e.anonymous_id, JSON.stringify(e.device));
        add(sitesOf, `anonymous ${e.anonymous_id}`, siteOf(e));
      }
      if (typeof e.user_id === 'string') add(sitesOf, `user ${e.user_id}`, siteOf(e));
    }
    expect([...deviceOf].filter(([, s]) => s.size > 1)).toEqual([]);
    expect([...sitesOf].filter(([, s]) => s.size > 1)).toEqual([]);
  });

  it('tells the story: devices, logins, the app, store purchases, campaigns, several sites', () => {
    const shop = events.filter((e) => siteOf(e) === 'default');
    expect(new Set(shop.map((e) => e.channel))).toEqual(new Set(['web', 'app', 'store', 'server']));
    expect(new Set(events.map(siteOf))).toEqual(new Set(['default', 'blog', 'help']));
    expect(new Set(shop.filter((e) => e.device).map((e) => e.device?.type))).toEqual(new Set(['mobile', 'tablet', 'desktop']));
    // People on several devices: a user id sent from two or more anonymous ids.
    const devicesOfUser = new Map<string, Set<string>>();
    for (const e of shop) {
      if (typeof e.user_id === 'string' && typeof e.anonymous_id === 'string') devicesOfUser.set(e.user_id, (devicesOfUser.get(e.user_id) ?? new Set()).add(e.anonymous_id));
    }
    expect([...devicesOfUser.values()].filter((s) => s.size >= 2).length).toBeGreaterThanOrEqual(10);
    expect(shop.filter((e) => e.type === 'login').length).toBeGreaterThan(10);
    // Anonymous visits on a device that logs in later, so a login re-attributes them.
    const loggedIn = new Set([...devicesOfUser.values()].flatMap((s) => [...s]));
    expect(shop.filter((e) => typeof e.anonymous_id === 'string' && loggedIn.has(e.anonymous_id) && e.user_id === undefined).length).toBeGreaterThan(10);
    const purchases = shop.filter((e) => e.channel === 'store');
    expect(purchases.length).toBeGreaterThan(5);
    expect(purchases.every((e) => e.key_event === true && typeof e.user_id === 'string' && e.anonymous_id === undefined)).toBe(true);
    expect(shop.filter((e) => e.channel === 'web' && e.key_event === true).length).toBeGreaterThan(5);
    const campaigns = new Set(shop.map((e) => (e.campaign as { name?: string } | undefined)?.name).filter(Boolean));
    expect(campaigns).toContain('spring');
    expect(campaigns.size).toBeGreaterThanOrEqual(3);
  });

  it('holds the ids the docs name: u-1042 on the phone anon-88, a laptop, the app and a store', () => {
    const of1042 = events.filter((e) => e.user_id === 'u-1042');
    expect(new Set(of1042.map((e) => e.channel))).toEqual(new Set(['web', 'app', 'store']));
    expect(new Set(of1042.map((e) => e.anonymous_id).filter(Boolean))).toEqual(new Set(['anon-88', 'anon-5b1e', 'app-ios-9c4d']));
    const phone = events.filter((e) => e.anonymous_id === 'anon-88');
    expect(phone.length).toBeGreaterThan(3);
    // The phone's first visit, from the spring newsletter, is anonymous: the later login claims it.
    const first = phone.reduce((a, b) => (new Date(a.timestamp as string | number) <= new Date(b.timestamp as string | number) ? a : b));
    expect(first.user_id).toBeUndefined();
    expect(first.campaign).toMatchObject({ name: 'spring' });
  });

  it('has the numbers docs/queries.md quotes', async () => {
    const stats = await recompute(createReadStream(FILE), new Writable({ write: (_c, _e, done) => done() }), { timeoutMs: 30 * 60_000, threads: 0 });
    const doc = readFileSync(join(REPO, 'docs', 'queries.md'), 'utf8').replace(/\s+/g, ' ');
    expect(doc).toContain(`(${events.length.toLocaleString('en')} events; \`recompute\` makes ${stats.sessions} sessions of ${stats.users} users of them)`);
  });
});
