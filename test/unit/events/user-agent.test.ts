/**
 * The User-Agent helper shared by the Segment mapping and the collector: names from real user
 * agents, nothing (and no exception) for empty or hostile input, and bounded work.
 */
import { browserOf, MAX_USER_AGENT_CHARS, parseUserAgent } from '../../../src/events/user-agent';

const UAS = {
  chromeMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  safariIphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  edgeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
};

describe('parseUserAgent', () => {
  it.each([
    ['chromeMac', { browser: 'Chrome', os: 'macOS', deviceType: 'desktop', isBot: false }],
    ['safariIphone', { browser: 'Safari', os: 'iOS', deviceType: 'mobile', isBot: false }],
    ['firefoxLinux', { browser: 'Firefox', os: 'Linux', deviceType: 'desktop', isBot: false }],
    ['edgeWindows', { browser: 'Microsoft Edge', os: 'Windows', deviceType: 'desktop', isBot: false }],
    ['googlebot', { browser: 'Googlebot', deviceType: 'bot', isBot: true }],
  ] as const)('%s', (name, expected) => {
    expect(parseUserAgent(UAS[name])).toMatchObject(expected);
    expect(browserOf(UAS[name])).toBe(expected.browser);
  });

  it('knows nothing about empty, blank or non-string input, without throwing', () => {
    for (const ua of ['', '   ', undefined, null, 42] as unknown as string[]) {
      expect(parseUserAgent(ua)).toEqual({ isBot: false });
      expect(browserOf(ua)).toBeUndefined();
    }
  });

  it('reads Client Hints when given', () => {
    const info = parseUserAgent(UAS.chromeMac, { brands: [{ brand: 'Google Chrome', version: '120' }], mobile: false, platform: 'macOS' });
    expect(info.browser).toBe('Chrome');
  });

  it('parses only the first MAX_USER_AGENT_CHARS characters, so huge input costs little', () => {
    const hostile = UAS.chromeMac + ' ' + '1.'.repeat(30_000) + 'x';
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) parseUserAgent(hostile);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(1000);
    expect(parseUserAgent(hostile).browser).toBe('Chrome');
    expect(parseUserAgent('x'.repeat(MAX_USER_AGENT_CHARS) + UAS.firefoxLinux).browser).toBeUndefined();
  });
});

describe('browserOf', () => {
  it('gives the same answer from its cache, and keeps answering past the cache size', () => {
    expect(browserOf(UAS.chromeMac)).toBe('Chrome');
    expect(browserOf(UAS.chromeMac)).toBe('Chrome');
    for (let i = 0; i < 2_500; i++) expect(browserOf(`${UAS.firefoxLinux} n${i}`)).toBe('Firefox');
    expect(browserOf(UAS.chromeMac)).toBe('Chrome');
    expect(browserOf('nothing known')).toBeUndefined();
    expect(browserOf('nothing known')).toBeUndefined();
  });
});
