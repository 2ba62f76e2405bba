/**
 * The first-party browser script: small (≤ 2 KB gzipped, as served), dependency-free, and it
 * names no storage API at all. The real-browser test (test/integration/collect-browser.int.test.ts)
 * checks the browser holds nothing after a visit.
 */
import { readFileSync } from 'node:fs';
import { browserScript, SCRIPT_PATH } from '../../../src/collect/script';

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
});
