/**
 * Enrichment: device from the User-Agent and Client Hints (bowser, through
 * src/events/user-agent.ts), geo from the bundled DB-IP mmdb files, bots from isbot.
 */
import { applyEnrichment, enrichmentOf, isKnownBot } from '../../../src/collect/enrich';
import { bundledDatabases, geoOf, GeoLookup } from '../../../src/collect/geo';
import { CHROME_MAC } from '../../support/collect-app';

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

describe('geo lookup (bundled database)', () => {
  let geo: GeoLookup;
  beforeAll(async () => {
    geo = await GeoLookup.open(bundledDatabases());
  });

  it('finds country, region and city of IPv4 and IPv6 addresses', () => {
    expect(geo.lookup('81.2.69.142')).toMatchObject({ country: 'GB', region: expect.any(String), city: expect.any(String) });
    expect(geo.lookup('8.8.8.8').country).toBe('US');
    expect(geo.lookup('2a02:8010::1').country).toBe('GB');
  });

  it('finds nothing for private, loopback and invalid addresses', () => {
    expect(geo.lookup('127.0.0.1')).toEqual({});
    expect(geo.lookup('10.1.2.3')).toEqual({});
    expect(geo.lookup('not an ip')).toEqual({});
  });

  it('reads GeoIP2-layout records too', () => {
    expect(geoOf({ country: { iso_code: 'de' }, subdivisions: [{ names: { en: 'Bavaria' } }], city: { names: { en: 'Munich' } } })).toEqual({
      country: 'DE',
      region: 'Bavaria',
      city: 'Munich',
    });
  });
});

describe('enrichment', () => {
  it('fills device from the User-Agent and only what the event lacks', () => {
    const e = enrichmentOf({ ip: '127.0.0.1', userAgent: IPHONE }, null);
    expect(e).toMatchObject({ device: { type: 'mobile', os: 'iOS', browser: 'Safari' }, isBot: false });
    const event: Record<string, unknown> = { device: { type: 'tablet' } };
    applyEnrichment(event, e);
    expect(event.device).toEqual({ type: 'tablet', os: 'iOS', browser: 'Safari' });
  });

  it('uses Client Hints when sent', () => {
    const frozen = 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36';
    const e = enrichmentOf({ ip: '', userAgent: frozen, hints: { mobile: true, platform: 'Android', brands: [{ brand: 'Google Chrome', version: '124' }] } }, null);
    expect(e.device).toMatchObject({ os: 'Android', type: 'mobile' });
  });

  it('recognises known bots and headless browsers, not real browsers', () => {
    expect(isKnownBot('Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)')).toBe(true);
    expect(isKnownBot('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36')).toBe(true);
    expect(isKnownBot(CHROME_MAC)).toBe(false);
    expect(isKnownBot('')).toBe(false);
  });
});
