/**
 * The engine's view of one event: only what the session rules of SPEC §2 read, already reduced
 * (the location a view stands for, the attribution the event would give a session it starts).
 * Reducing once here keeps the engine free of URL parsing and keeps its state small.
 */
import type { Channel, ValidEvent } from './event-schema';
import { VIEW_TYPES } from './event-schema';

export interface SessionEvent {
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

/** `user_key = anonymous_id ?? user_id`, the first non-empty one (SPEC §1). */
export function userKeyOf(event: Pick<ValidEvent, 'anonymous_id' | 'user_id'>): string {
  return event.anonymous_id || event.user_id || '';
}

export function toSessionEvent(event: ValidEvent): SessionEvent {
  const isView = VIEW_TYPES.has(event.type);
  const attribution = attributionOf(event);
  return {
    userKey: userKeyOf(event),
    eventId: event.event_id,
    ts: event.timestamp,
    isView,
    keyEvent: event.key_event === true,
    channel: event.channel ?? 'web',
    location: isView ? locationOf(event) : '',
    anonymousId: event.anonymous_id ?? '',
    userId: event.user_id ?? '',
    ...attribution,
    deviceType: event.device?.type ?? '',
    os: event.device?.os ?? '',
    browser: event.device?.browser ?? '',
    appVersion: event.device?.app_version ?? '',
    country: event.geo?.country ? event.geo.country.toUpperCase() : '',
    region: event.geo?.region ?? '',
    city: event.geo?.city ?? '',
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

const DIRECT: Attribution = { source: '(direct)', medium: '(none)', campaign: '', term: '', content: '' };

/**
 * What this event would attribute a session to, were it the first event: its UTM values when
 * `campaign.source` is set; else a referral from another host; else direct.
 */
export function attributionOf(event: Pick<ValidEvent, 'campaign' | 'page'>): Attribution {
  const c = event.campaign;
  if (c?.source) {
    return { source: c.source, medium: c.medium ?? '', campaign: c.name ?? '', term: c.term ?? '', content: c.content ?? '' };
  }
  const referrerHost = event.page?.referrer ? hostOfUrl(event.page.referrer) : '';
  if (referrerHost) {
    const pageHost = event.page?.url ? hostOfUrl(event.page.url) : '';
    if (referrerHost !== pageHost) {
      return { source: referrerHost.replace(/^www\./, ''), medium: 'referral', campaign: '', term: '', content: '' };
    }
  }
  return DIRECT;
}

function pathOfUrl(url: string): string {
  const parsed = parseUrl(url);
  if (parsed) return parsed.pathname;
  // A relative URL such as "/pricing?plan=pro" still names a path.
  if (url.startsWith('/')) return url.split(/[?#]/, 1)[0] ?? '';
  return '';
}

/** Lower-case host name of an absolute URL, "" when there is none. */
function hostOfUrl(url: string): string {
  return parseUrl(url)?.hostname.toLowerCase() ?? '';
}

function parseUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
