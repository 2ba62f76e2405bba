/**
 * What a User-Agent string says about the client: browser name, operating system, device type
 * and whether it is a known bot. One small wrapper around `bowser` (MIT, no dependencies,
 * released regularly, its own type definitions) so that the Segment mapping and the collector
 * read user agents the same way. `ua-parser-js` was the other candidate: its maintained line
 * (2.x) is AGPL-licensed and its MIT line (1.x) only gets occasional fixes.
 *
 * Never throws: bowser refuses an empty string, and any failure inside it means "unknown".
 */
import Bowser from 'bowser';

/**
 * Characters of a User-Agent that are parsed. Real ones are a few hundred characters; the cap
 * bounds the work a hostile 64 KiB header or message field can cause in the parser's regexes.
 */
export const MAX_USER_AGENT_CHARS = 512;

/** Client Hints as bowser reads them (`Sec-CH-UA*` headers, or `navigator.userAgentData`). */
export interface ClientHints {
  brands?: Array<{ brand: string; version: string }>;
  mobile?: boolean;
  platform?: string;
  platformVersion?: string;
  model?: string;
}

export interface UserAgentInfo {
  /** Browser name as bowser names it, e.g. "Chrome", "Safari", "Firefox", "Microsoft Edge". */
  browser?: string;
  /** Operating system, e.g. "Windows", "macOS", "iOS", "Android", "Linux". */
  os?: string;
  /** "desktop", "mobile", "tablet", "tv" or "bot". */
  deviceType?: string;
  /** A crawler or monitoring bot that bowser recognises. */
  isBot: boolean;
}

export function parseUserAgent(userAgent: string, hints?: ClientHints): UserAgentInfo {
  if (typeof userAgent !== 'string' || userAgent.trim() === '') return { isBot: false };
  try {
    const ua = userAgent.slice(0, MAX_USER_AGENT_CHARS);
    const parser = hints ? Bowser.getParser(ua, hints) : Bowser.getParser(ua);
    const deviceType = parser.getPlatformType() || undefined;
    return {
      browser: parser.getBrowserName() || undefined,
      os: parser.getOSName() || undefined,
      deviceType,
      isBot: deviceType === 'bot',
    };
  } catch {
    return { isBot: false };
  }
}

/**
 * Browser names of recent user agents. Real traffic repeats a few hundred user agents, and a
 * lookup costs far less than bowser's regexes; the map is emptied when full, which bounds its
 * memory without the bookkeeping of an LRU.
 */
const BROWSER_CACHE_SIZE = 2_000;
const browserCache = new Map<string, string | undefined>();

/** The browser name of a User-Agent, or undefined when it names none bowser knows. */
export function browserOf(userAgent: string): string | undefined {
  if (typeof userAgent !== 'string' || userAgent.trim() === '') return undefined;
  const ua = userAgent.slice(0, MAX_USER_AGENT_CHARS);
  if (browserCache.has(ua)) return browserCache.get(ua);
  let name: string | undefined;
  try {
    name = Bowser.getParser(ua).getBrowserName() || undefined;
  } catch {
    name = undefined;
  }
  if (browserCache.size >= BROWSER_CACHE_SIZE) browserCache.clear();
  browserCache.set(ua, name);
  return name;
}
