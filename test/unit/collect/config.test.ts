/**
 * The collector's settings as loadConfig reads them from the environment.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config';
import { InvalidConfigError } from '../../../src/errors';

describe('collect configuration', () => {
  it('has production defaults: no keys, the first event topic, 32 KB / 500 KB, bundled geo, cookieless on', () => {
    const { collect } = loadConfig({ KAFKA_TOPICS: 'web,app' });
    expect(collect).toMatchObject({
      port: 8080,
      topic: 'web',
      trustedProxies: [],
      maxMessageBytes: 32 * 1024,
      maxBatchBytes: 500 * 1024,
      geoipDatabases: 'bundled',
      cookieless: true,
      rateLimit: { windowMs: 60_000, perKey: 600_000, perIp: 6_000 },
    });
    expect(collect.writeKeys.size).toBe(0);
  });

  it('reads keys (also from a file), proxies, geo files or off, and the topic', () => {
    const dir = mkdtempSync(join(tmpdir(), 'collect-config-'));
    try {
      writeFileSync(join(dir, 'keys'), 'k1:site-a,k2:site-b\n');
      const { collect } = loadConfig({
        COLLECT_WRITE_KEYS_FILE: join(dir, 'keys'),
        COLLECT_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1',
        COLLECT_GEOIP_DATABASES: '/geo/a.mmdb,/geo/b.mmdb',
        COLLECT_TOPIC: 'collected',
        COLLECT_COOKIELESS: 'false',
      });
      expect([...collect.writeKeys]).toEqual([
        ['k1', 'site-a'],
        ['k2', 'site-b'],
      ]);
      expect(collect).toMatchObject({ trustedProxies: ['10.0.0.0/8', '127.0.0.1'], geoipDatabases: ['/geo/a.mmdb', '/geo/b.mmdb'], topic: 'collected', cookieless: false });
      expect(loadConfig({ COLLECT_GEOIP_DATABASES: 'off' }).collect.geoipDatabases).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads Plausible domains: domain:site, compared without www. and in lower case', () => {
    expect(loadConfig({}).collect.plausibleDomains.size).toBe(0);
    const { collect } = loadConfig({ COLLECT_PLAUSIBLE_DOMAINS: 'www.Shop.example:shop, shop.example.co.uk:shop,blog.example:blog' });
    expect([...collect.plausibleDomains]).toEqual([
      ['shop.example', 'shop'],
      ['shop.example.co.uk', 'shop'],
      ['blog.example', 'blog'],
    ]);
    for (const bad of ['shop.example', 'shop.example:', ':shop', 'shop.example:Shop', 'a.example:a,www.a.example:b']) {
      expect(() => loadConfig({ COLLECT_PLAUSIBLE_DOMAINS: bad })).toThrow(/COLLECT_PLAUSIBLE_DOMAINS/);
    }
  });

  it('refuses malformed keys and limits', () => {
    expect(() => loadConfig({ COLLECT_WRITE_KEYS: 'k1:a,k1:b' })).toThrow(InvalidConfigError);
    expect(() => loadConfig({ COLLECT_MAX_BATCH_KB: '0' })).toThrow(InvalidConfigError);
    expect(() => loadConfig({ COLLECT_PORT: '70000' })).toThrow(InvalidConfigError);
  });
});
