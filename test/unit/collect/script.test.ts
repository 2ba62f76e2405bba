/**
 * The first-party browser script: small (≤ 2 KB gzipped, as served), dependency-free, and it
 * names no storage API at all. The real-browser test (test/integration/collect-browser.int.test.ts)
 * checks the browser holds nothing after a visit.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { browserScript, SCRIPT_PATH } from '../../../src/collect/script';
import { KEY, testApp } from '../../support/collect-app';

/**
 * Runs s.js against a minimal stand-in of a page (what the script reads of window, document,
 * location, history and navigator) and returns the beacons it sends, as [url, body].
 */
function runScript(code: string): { beacons: Array<[string, string]>; sessionizer: { track(name: string, props?: object): void; page(): void } } {
  const beacons: Array<[string, string]> = [];
  const location = { href: 'https://shop.example/pricing?utm_source=news', pathname: '/pricing', search: '?utm_source=news' };
  const window: Record<string, unknown> = { addEventListener: () => undefined };
  const sandbox = {
    window,
    document: { currentScript: { src: 'https://collect.example/s.js', getAttribute: (name: string) => (name === 'data-key' ? KEY : null) }, title: 'Pricing', referrer: '' },
    navigator: { sendBeacon: (url: string, body: string) => (beacons.push([url, body]), true) },
    location,
    history: { pushState: () => undefined, replaceState: () => undefined },
    crypto: { randomUUID: () => `id-${beacons.length}` },
    URL,
    fetch: () => undefined,
  };
  runInNewContext(code, sandbox);
  return { beacons, sessionizer: window.sessionizer as ReturnType<typeof runScript>['sessionizer'] };
}

describe('s.js', () => {
  const code = readFileSync(SCRIPT_PATH, 'utf8');
  const withoutComments = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');

  it('is at most 2 KB gzipped, as served', () => {
    expect(browserScript().gzip.length).toBeLessThanOrEqual(2048);
  });

  it('touches no cookie and no storage', () => {
    for (const api of ['cookie', 'localStorage', 'sessionStorage', 'indexedDB', 'caches']) expect(withoutComments).not.toContain(api);
  });

  it('has no dependencies (no import, require or other script)', () => {
    expect(withoutComments).not.toMatch(/\brequire\(|\bimport\b|createElement\(['"]script/);
  });

  it('sends with sendBeacon and fetch keepalive, and follows history changes', () => {
    for (const needle of ['sendBeacon', 'keepalive: true', 'pushState', 'replaceState', 'popstate']) expect(withoutComments).toContain(needle);
  });

  it('sends everything as channel web: page views and sessionizer.track() calls alike', async () => {
    const { beacons, sessionizer } = runScript(code);
    sessionizer.track('Signed Up', { plan: 'pro' });
    sessionizer.page();
    expect(beacons.map(([url]) => url)).toEqual(['https://collect.example/v1/page', 'https://collect.example/v1/track', 'https://collect.example/v1/page']);
    // Through the collector as the browser would post them (text/plain, key in the body).
    const t = await testApp({ cookieless: true }, { visitorIds: { idFor: async () => 'c-visitor' } as never });
    try {
      for (const [url, body] of beacons) {
        const res = await t.call({ url: new URL(url).pathname, headers: { 'content-type': 'text/plain;charset=UTF-8' }, payload: body });
        expect(res.statusCode).toBe(200);
      }
      expect(t.sender.events().map((e) => [e.type, e.channel])).toEqual([
        ['page_view', 'web'],
        ['track', 'web'],
        ['page_view', 'web'],
      ]);
    } finally {
      await t.app.close();
    }
  });
});
