/**
 * The collector's small pure readers: write keys (configuration and Basic auth), request bodies
 * into messages, Client Hints headers, and which User-Agent is a visitor's.
 */
import { parseWriteKeys } from '../../../src/config';
import { hintsFromContext, hintsFromHeaders } from '../../../src/collect/client-hints';
import { hasOwnId, splitBody } from '../../../src/collect/messages';
import { visitorAgent } from '../../../src/collect/server';
import { siteOf, writeKeyOfHeader } from '../../../src/collect/write-keys';
import { InvalidConfigError } from '../../../src/errors';

describe('write keys', () => {
  it('parses key:site lists from configuration; several keys may name one site; no site: default', () => {
    expect([...parseWriteKeys('k1:site1, k2:site2,k3,k4:site1')]).toEqual([
      ['k1', 'site1'],
      ['k2', 'site2'],
      ['k3', 'default'],
      ['k4', 'site1'],
    ]);
    expect(() => parseWriteKeys('k1:a,k1:b')).toThrow(InvalidConfigError);
    expect(() => parseWriteKeys(':a')).toThrow(InvalidConfigError);
  });

  it('refuses a site that is not a site name, without quoting the key (a secret)', () => {
    for (const bad of ['k_secret:Shop', 'k_secret:-shop', 'k_secret:shop web', `k_secret:${'s'.repeat(65)}`]) {
      expect(() => parseWriteKeys(bad)).toThrow(InvalidConfigError);
      expect(() => parseWriteKeys(bad)).not.toThrow(/k_secret/);
    }
  });

  it('reads the Basic user as the key, and falls back to the body', () => {
    const keys = new Map([['k1', 'site1']]);
    expect(writeKeyOfHeader(`Basic ${Buffer.from('k1:').toString('base64')}`)).toBe('k1');
    expect(writeKeyOfHeader(`basic ${Buffer.from('k1').toString('base64')}`)).toBe('k1');
    expect(writeKeyOfHeader('Bearer x')).toBeNull();
    expect(siteOf(keys, undefined, { writeKey: 'k1' })).toEqual({ writeKey: 'k1', siteId: 'site1' });
    expect(siteOf(keys, `Basic ${Buffer.from('k2:').toString('base64')}`, {})).toBeNull();
  });
});

describe('splitBody', () => {
  it('gives a single call the route’s type and a batch its messages, with shared context', () => {
    expect(splitBody('track', { event: 'e', type: 'page' }, 1000)).toEqual({ ok: true, messages: [{ event: 'e', type: 'track' }] });
    const split = splitBody('batch', { batch: [{ type: 'page', context: { ip: 'x' } }], context: { library: { name: 'l' } } }, 1000);
    expect(split).toEqual({ ok: true, messages: [{ type: 'page', context: { library: { name: 'l' }, ip: 'x' } }] });
  });

  it('refuses what is not a Segment body, and messages over the limit with 413', () => {
    expect(splitBody('batch', { batch: 'no' }, 1000)).toMatchObject({ ok: false, status: 400 });
    expect(splitBody('batch', { batch: [{ type: 'nope' }] }, 1000)).toMatchObject({ ok: false, status: 400 });
    expect(splitBody('track', [1], 1000)).toMatchObject({ ok: false, status: 400 });
    expect(splitBody('batch', { batch: [{ type: 'track', p: 'x'.repeat(2000) }] }, 1000)).toMatchObject({ ok: false, status: 413 });
    expect(splitBody('batch', { batch: [{ type: 'track', p: 'x'.repeat(2000) }] }, 1000, 2100)).toMatchObject({ ok: false, status: 413 });
    // A body within the message limit holds no message over it: nothing to measure.
    expect(splitBody('batch', { batch: [{ type: 'track', p: 'x'.repeat(10) }] }, 1000, 60)).toMatchObject({ ok: true });
  });

  it('knows when a message brings its own id', () => {
    expect(hasOwnId({ anonymousId: 'a' })).toBe(true);
    expect(hasOwnId({ userId: 42 })).toBe(true);
    expect(hasOwnId({ type: 'alias', previousId: 'p' })).toBe(true);
    expect(hasOwnId({ anonymousId: '' })).toBe(false);
  });
});

describe('client hints', () => {
  it('reads Sec-CH-UA headers', () => {
    const hints = hintsFromHeaders({
      'sec-ch-ua': '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
      'sec-ch-ua-mobile': '?1',
      'sec-ch-ua-platform': '"Android"',
    });
    expect(hints).toEqual({
      brands: [
        { brand: 'Chromium', version: '124' },
        { brand: 'Google Chrome', version: '124' },
        { brand: 'Not-A.Brand', version: '99' },
      ],
      mobile: true,
      platform: 'Android',
    });
    expect(hintsFromHeaders({})).toBeUndefined();
    expect(hintsFromHeaders({ 'sec-ch-ua-platform': 'not quoted' })).toBeUndefined();
  });

  it('reads context.userAgentData', () => {
    expect(hintsFromContext({ userAgentData: { brands: [{ brand: 'Chromium', version: '124' }], mobile: false, platform: 'Linux' } })).toEqual({
      brands: [{ brand: 'Chromium', version: '124' }],
      mobile: false,
      platform: 'Linux',
    });
    expect(hintsFromContext({})).toBeUndefined();
  });
});

describe('visitorAgent', () => {
  it('keeps browsers’ User-Agents and drops HTTP libraries’', () => {
    expect(visitorAgent('Mozilla/5.0 (X11; Linux x86_64)')).toBe('Mozilla/5.0 (X11; Linux x86_64)');
    expect(visitorAgent('analytics-node-next/latest')).toBe('');
    expect(visitorAgent('curl/8.5.0')).toBe('');
  });
});
