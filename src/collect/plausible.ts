/**
 * Plausible's Events API (`POST /api/event`), read as Plausible reads it, pure (no I/O): the
 * body of one request becomes the Segment-shaped message our one mapping turns into an event,
 * so a site running Plausible's script switches to the collector by changing its API host.
 *
 * What the body may hold, long and short names alike (the script sends the one-letter ones):
 * `n`/`name` (required; a number is read as text, for 404 tracking), `u`/`url` (required),
 * `d`/`domain` (one domain or a comma-separated list; absent: the URL's host), `r`/`referrer`,
 * `p`/`props` (also `m`/`meta`; an object or its JSON text), `$`/`revenue`, `h`/`hashMode`
 * (1: the URL's `#fragment` is part of the path). `i`/`interactive` and the script's version `v`
 * and the screen width `w` are read by nobody here; `sd` and `e` belong to `engagement` pings,
 * which are not events.
 *
 * The limits are Plausible's: a name of at most 120 characters, a URL of at most 2000, at most
 * 30 properties of flat values, keys up to 300 bytes and values up to 2000. What breaks them is
 * answered 400 with Plausible's body, `{"errors": {"field": ["why"]}}`.
 */
import type { Message } from './messages';

/** The name of Plausible's page views; every other name is a custom event. */
export const PAGEVIEW = 'pageview';
/**
 * Plausible's engagement pings (time on page, scroll depth), sent when a page is hidden. They are
 * not events here: answered like Plausible, counted, and not sessionized (docs/collect.md).
 */
export const ENGAGEMENT = 'engagement';

const MAX_NAME = 120;
const MAX_URL = 2000;
const MAX_PROPS = 30;
const MAX_PROP_KEY_BYTES = 300;
const MAX_PROP_VALUE_BYTES = 2000;

/** Field → reasons, Plausible's error body. */
export type PlausibleErrors = Record<string, string[]>;

export interface PlausibleRequest {
  name: string;
  url: string;
  /** Path as the page has it (`#fragment` included in hash mode). */
  path: string;
  /** Domains as compared with the configured ones (lower case, without `www.`), distinct. */
  domains: string[];
  referrer?: string;
  props?: Record<string, string>;
  revenue?: { amount: string | number; currency: string };
}

export type PlausibleParse = { ok: true; request: PlausibleRequest } | { ok: false; errors: PlausibleErrors };

/** A Plausible domain as compared: trimmed, lower case, without a leading `www.` (as Plausible strips it). */
export function plausibleDomainKey(domain: string): string {
  const trimmed = domain.trim().toLowerCase();
  return trimmed.startsWith('www.') ? trimmed.slice(4) : trimmed;
}

/** Reads a parsed JSON body as Plausible's Events API does. */
export function parsePlausibleBody(body: unknown): PlausibleParse {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { ok: false, errors: { request: ['the body must be a JSON object'] } };
  const b = body as Record<string, unknown>;
  const errors: PlausibleErrors = {};
  const fail = (field: string, why: string) => (errors[field] ??= []).push(why);

  const rawName = b.n ?? b.name;
  const name = typeof rawName === 'string' ? rawName : typeof rawName === 'number' && Number.isInteger(rawName) ? String(rawName) : null;
  if (rawName !== undefined && rawName !== null && name === null) fail('event_name', 'is invalid');
  else if (!name) fail('event_name', "can't be blank");
  else if (name.length > MAX_NAME) fail('event_name', `should be at most ${MAX_NAME} character(s)`);

  const rawUrl = b.u ?? b.url;
  let url: URL | null = null;
  if (rawUrl === undefined || rawUrl === null) fail('url', 'is required');
  else if (typeof rawUrl !== 'string' || rawUrl.length > MAX_URL || !URL.canParse(rawUrl)) fail('url', 'must be a valid url');
  else {
    url = new URL(rawUrl);
    if (url.protocol === 'data:') fail('url', 'scheme is not allowed');
  }

  const rawDomain = b.d ?? b.domain;
  let domains: string[] = [];
  if (typeof rawDomain === 'string' && rawDomain.trim() !== '') {
    domains = [...new Set(rawDomain.split(',').map(plausibleDomainKey).filter(Boolean))];
  } else if (rawDomain === undefined || rawDomain === null) {
    if (url?.hostname) domains = [plausibleDomainKey(url.hostname)];
  }
  if (domains.length === 0 && !errors.url) fail('domain', "can't be blank");

  const props = propsOf(b.m ?? b.meta ?? b.p ?? b.props);
  if (props === 'too long') fail('props', `keys should have at most ${MAX_PROP_KEY_BYTES} bytes and values ${MAX_PROP_VALUE_BYTES} bytes`);

  if (Object.keys(errors).length > 0 || !url || !name) return { ok: false, errors };
  const hashMode = (b.h ?? b.hashMode) === 1;
  const request: PlausibleRequest = { name, url: url.href, path: (url.pathname || '/') + (hashMode && url.hash ? url.hash : ''), domains };
  const referrer = b.r ?? b.referrer;
  if (typeof referrer === 'string' && referrer !== '') request.referrer = referrer.slice(0, MAX_URL);
  if (props && props !== 'too long' && Object.keys(props).length > 0) request.props = props;
  const revenue = revenueOf(b.$ ?? b.revenue);
  if (revenue) request.revenue = revenue;
  return { ok: true, request };
}

/**
 * Plausible's custom properties: flat values only (nested ones and blank ones are left out, as
 * Plausible does), as text, at most 30. An object, or its JSON text (older scripts sent that).
 */
function propsOf(raw: unknown): Record<string, string> | 'too long' | undefined {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const props: Record<string, string> = {};
  let count = 0;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === null || v === undefined || typeof v === 'object') continue;
    const text = String(v);
    if (key.trim() === '' || text.trim() === '') continue;
    if (Buffer.byteLength(key) > MAX_PROP_KEY_BYTES || Buffer.byteLength(text) > MAX_PROP_VALUE_BYTES) return 'too long';
    if (count++ >= MAX_PROPS) break;
    props[key] = text;
  }
  return props;
}

function revenueOf(raw: unknown): PlausibleRequest['revenue'] | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const { amount, currency } = raw as Record<string, unknown>;
  if ((typeof amount !== 'string' && typeof amount !== 'number') || typeof currency !== 'string') return undefined;
  return { amount, currency };
}

/**
 * The Segment message our mapping makes the event of: `pageview` a page call (→ `page_view`),
 * any other name a track call with that name; channel `web` (Plausible's script runs in a
 * browser); the event time is the time of receipt, as Plausible's own. The visitor id and the
 * `messageId` are added by the caller. Properties are the event's props, plus `revenue` when
 * the event carries revenue.
 */
export function plausibleToSegment(request: PlausibleRequest, receivedAt: string): Message {
  const page: Record<string, string> = { url: request.url, path: request.path };
  if (request.referrer) page.referrer = request.referrer;
  const properties: Record<string, unknown> = { ...request.props };
  if (request.revenue && properties.revenue === undefined) properties.revenue = request.revenue;
  const message: Message = { timestamp: receivedAt, context: { channel: 'web', page } };
  if (request.name === PAGEVIEW) message.type = 'page';
  else {
    message.type = 'track';
    message.event = request.name;
  }
  if (Object.keys(properties).length > 0) message.properties = properties;
  return message;
}
