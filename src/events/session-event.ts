/**
 * The engine's view of one event: only what the session rules read, already reduced
 * (the location a view stands for, the attribution the event would give a session it starts).
 * Reducing once here keeps the engine free of URL parsing and keeps its state small.
 */
import type { Channel, ValidEvent } from './event-schema';
import { VIEW_TYPES } from './event-schema';
import { DEFAULT_SITE, visitorKeyOf } from './visitor-key';

export interface SessionEvent {
  /**
   * The visitor key: the pair (site, user key) as one string (src/events/visitor-key.ts). Every
   * per-visitor rule runs on it; for the site `default` it is the user key itself.
   */
  userKey: string;
  eventId: string;
  /** Event time, epoch milliseconds. */
  ts: number;
  isView: boolean;
  keyEvent: boolean;
  channel: Channel;
  /** Page path / screen name of a view; "" for other events (they never set entry or exit). */
  location: string;
  anonymousId: string;
  userId: string;
  source: string;
  medium: string;
  campaign: string;
  term: string;
  content: string;
  deviceType: string;
  os: string;
  browser: string;
  appVersion: string;
  country: string;
  region: string;
  city: string;
}

/** `user_key = anonymous_id ?? user_id`, the first non-empty one (the event format). */
export function userKeyOf(event: Pick<ValidEvent, 'anonymous_id' | 'user_id'>): string {
  return event.anonymous_id || event.user_id || '';
}

/** The event's site: its own `site`, else `fallback` (its topic's site, else `default`). */
export function siteOf(event: Pick<ValidEvent, 'site'>, fallback: string = DEFAULT_SITE): string {
  return event.site || fallback;
}

/** @param site the site of an event that names none (its topic's), `default` when not given */
export function toSessionEvent(event: ValidEvent, site: string = DEFAULT_SITE): SessionEvent {
  return sessionEventOf(event, event.timestamp, site);
}

/** The fields of a validated event that the engine's view is made of. */
export type EventFields = Omit<ValidEvent, 'timestamp'>;

/**
 * `toSessionEvent` for an event whose time is already known in epoch milliseconds: the fast
 * path hands over the parsed JSON object itself, once it is known to be valid. Builds one
 * object, no spreads, and parses URLs only when the result depends on them.
 *
 * @param site the site of an event that names none (its topic's); the event's own `site` wins
 */
export function sessionEventOf(event: EventFields, ts: number, site: string = DEFAULT_SITE): SessionEvent {
  const type = event.type;
  const isView = type === 'page_view' || type === 'screen_view' || VIEW_TYPES.has(type);
  const page = event.page;
  const device = event.device;
  const geo = event.geo;
  const c = event.campaign;
  let source = '(direct)';
  let medium = '(none)';
  let campaign = '';
  let term = '';
  let content = '';
  if (c && c.source) {
    source = c.source;
    medium = c.medium ?? '';
    campaign = c.name ?? '';
    term = c.term ?? '';
    content = c.content ?? '';
  } else if (page && page.referrer) {
    const referral = referralSource(page.referrer, page.url);
    if (referral) {
      source = referral;
      medium = 'referral';
    }
  }
  const country = geo ? geo.country : null;
  return {
    // For the site `default` the user key itself: no new string on the common path.
    userKey: visitorKeyOf(event.site || site, event.anonymous_id || event.user_id || ''),
    eventId: event.event_id,
    ts,
    isView,
    keyEvent: event.key_event === true,
    channel: event.channel ?? 'web',
    location: isView ? locationOf(event) : '',
    anonymousId: event.anonymous_id ?? '',
    userId: event.user_id ?? '',
    source,
    medium,
    campaign,
    term,
    content,
    deviceType: (device && device.type) ?? '',
    os: (device && device.os) ?? '',
    browser: (device && device.browser) ?? '',
    appVersion: (device && device.app_version) ?? '',
    country: country ? country.toUpperCase() : '',
    region: (geo && geo.region) ?? '',
    city: (geo && geo.city) ?? '',
  };
}

/** `page.path`, else the path of `page.url`, else `name`, else "". */
export function locationOf(event: Pick<ValidEvent, 'page' | 'name'>): string {
  if (event.page?.path) return event.page.path;
  const fromUrl = event.page?.url ? pathOfUrl(event.page.url) : '';
  if (fromUrl) return fromUrl;
  return event.name ?? '';
}

type Attribution = Pick<SessionEvent, 'source' | 'medium' | 'campaign' | 'term' | 'content'>;

/**
 * What this event would attribute a session to, were it the first event: its UTM values when
 * `campaign.source` is set; else a referral from another host; else direct.
 */
export function attributionOf(event: Pick<ValidEvent, 'campaign' | 'page'>): Attribution {
  const c = event.campaign;
  if (c?.source) {
    return { source: c.source, medium: c.medium ?? '', campaign: c.name ?? '', term: c.term ?? '', content: c.content ?? '' };
  }
  const referral = event.page?.referrer ? referralSource(event.page.referrer, event.page.url) : '';
  if (referral) return { source: referral, medium: 'referral', campaign: '', term: '', content: '' };
  return { source: '(direct)', medium: '(none)', campaign: '', term: '', content: '' };
}

/** The referring host (without `www.`) when it differs from the page's own host, else "". */
function referralSource(referrer: string, pageUrl: string | null | undefined): string {
  const referrerHost = hostOfUrl(referrer);
  if (!referrerHost) return '';
  const pageHost = pageUrl ? hostOfUrl(pageUrl) : '';
  if (referrerHost === pageHost) return '';
  return referrerHost.startsWith('www.') ? referrerHost.slice(4) : referrerHost;
}

/**
 * An http(s) URL whose host is plain ASCII labels with no port or user info: its host name and
 * path need no WHATWG parsing (lower-casing the host is all `new URL` would do). Anything else
 * — IDN or `xn--` labels, IPv4-looking hosts, ports, backslashes, tabs, percent-encoded dots,
 * characters `new URL` would escape — falls back to `new URL`. test/unit/events/
 * fast-validation.test.ts compares the two on random URLs.
 */
const SIMPLE_URL = /^https?:\/\/([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?=[/?#]|$)/i;
const SIMPLE_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
const NUMERIC_LABEL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/i;
const IDN_LABEL = /(?:^|\.)xn--/i;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** Length of the scheme and host of a simple URL (see `SIMPLE_URL`), -1 when it is not simple. */
function simplePrefix(url: string): number {
  const m = SIMPLE_URL.exec(url);
  if (!m) return -1;
  const host = m[1] as string;
  if (NUMERIC_LABEL.test(host) || IDN_LABEL.test(host)) return -1;
  return m[0].length;
}

function pathOfUrl(url: string): string {
  const prefix = simplePrefix(url);
  if (prefix >= 0) {
    const rest = url.slice(prefix);
    let end = rest.length;
    const q = rest.indexOf('?');
    if (q >= 0) end = q;
    const h = rest.indexOf('#');
    if (h >= 0 && h < end) end = h;
    const path = rest.slice(0, end);
    if (path === '') return '/';
    if (SIMPLE_PATH.test(path) && !DOT_SEGMENT.test(path)) return path;
  }
  const parsed = parseUrl(url);
  if (parsed) return parsed.pathname;
  // A relative URL such as "/pricing?plan=pro" still names a path.
  if (url.startsWith('/')) return url.split(/[?#]/, 1)[0] ?? '';
  return '';
}

/** Lower-case host name of an absolute URL, "" when there is none. */
function hostOfUrl(url: string): string {
  const prefix = simplePrefix(url);
  if (prefix >= 0) return url.slice(url.indexOf('//') + 2, prefix).toLowerCase();
  return parseUrl(url)?.hostname.toLowerCase() ?? '';
}

function parseUrl(url: string): URL | null {
  // Every absolute URL has a scheme, and so a colon: without one, `new URL` would only throw.
  if (url.indexOf(':') < 0) return null;
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** Exposed for the property test that compares the shortcuts with `new URL`. */
export const urlHelpersForTest = { pathOfUrl, hostOfUrl };
