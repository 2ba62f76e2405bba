/**
 * Segment Spec messages (track, page, screen, identify, group, alias) → events in our own
 * format. The one mapping every entry point uses: the worker's Segment topics, `recompute
 * --format segment` and the `collect` HTTP server, so a message becomes the same event
 * whichever way it arrives. docs/segment.md documents it field by field.
 *
 * Pure and total: it never throws, whatever value it is given, and an `ok` result is an event
 * our own parser accepts (it is checked with it), so callers can treat it like any other.
 */
import { InvalidEventError } from '../../errors';
import { CHANNELS, type Channel } from '../event-schema';
import { checkEventValue, describeIssue, type ParsedEventFields } from '../parse-event';
import { formatTimestamp, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS } from '../timestamp';
import { browserOf } from '../user-agent';
import { DEFAULT_SITE } from '../visitor-key';
import { segmentMessageSchema, segmentTime, type SegmentMessage } from './schema';

export interface SegmentMappingOptions {
  /** Names of `track` events that are key events (conversions). */
  keyEvents?: ReadonlySet<string> | readonly string[];
  /**
   * When the message was received (ISO-8601 or epoch ms), used when the message has no
   * `receivedAt` of its own: the collector passes the request's arrival time.
   */
  receivedAt?: string | number;
  /** Browser name from `context.userAgent`; by default `browserOf` (src/events/user-agent.ts). */
  parseBrowser?: (userAgent: string) => string | undefined;
  /**
   * The site of a message that names none in `context.site` (its topic's, KAFKA_TOPIC_SITES).
   * The mapped event carries its site as `site` whenever it is not `default`.
   */
  site?: string;
}

export type SegmentMappingResult = { ok: true; event: Record<string, unknown> } | { ok: false; error: InvalidEventError };

/** The mapped event and what our own parser made of it (the engine's view, fields and time). */
export type SegmentParsed = { ok: true; event: Record<string, unknown>; parsed: ParsedEventFields & { ok: true } } | { ok: false; error: InvalidEventError };

const EVENT_TYPES: Record<SegmentMessage['type'], string> = {
  track: 'track',
  page: 'page_view',
  screen: 'screen_view',
  identify: 'identify',
  group: 'group',
  alias: 'alias',
};

/** Segment's top-level `channel` values and the entry point each stands for. */
const SEGMENT_CHANNELS: ReadonlyMap<string, Channel> = new Map([
  ['browser', 'web'],
  ['mobile', 'app'],
  ['server', 'server'],
]);
const OWN_CHANNELS: ReadonlySet<string> = new Set(CHANNELS);

const PAGE_FIELDS = ['url', 'path', 'title', 'referrer'] as const;
const CAMPAIGN_FIELDS = ['source', 'medium', 'name', 'term', 'content'] as const;
/** `utm_*` query parameters and the campaign field each fills. */
const UTM_PARAMETERS = [
  ['utm_source', 'source'],
  ['utm_medium', 'medium'],
  ['utm_campaign', 'name'],
  ['utm_term', 'term'],
  ['utm_content', 'content'],
] as const;
const COUNTRY_CODE = /^[A-Za-z]{2}$/;

/** Maps one Segment message (a parsed JSON value) to an event in our own format, or says why not. */
export function segmentToEvent(message: unknown, options: SegmentMappingOptions = {}): SegmentMappingResult {
  const mapped = mapSegmentMessage(message, options);
  return mapped.ok ? { ok: true, event: mapped.event } : mapped;
}

/** `segmentToEvent` that also hands over our parser's result, for callers that sessionize. */
export function mapSegmentMessage(message: unknown, options: SegmentMappingOptions = {}): SegmentParsed {
  try {
    const event = buildEvent(message, options);
    if (event instanceof InvalidEventError) return { ok: false, error: event };
    const parsed = checkEventValue(event);
    return parsed.ok ? { ok: true, event, parsed } : parsed;
  } catch (err) {
    // Nothing above is expected to throw (a test feeds it arbitrary JSON); if a library does
    // anyway, the message is still rejected with a reason rather than stopping the caller.
    return { ok: false, error: new InvalidEventError('', `cannot map the Segment message (${(err as Error).message})`) };
  }
}

function buildEvent(input: unknown, options: SegmentMappingOptions): Record<string, unknown> | InvalidEventError {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return new InvalidEventError('', 'expected a JSON object');
  const result = segmentMessageSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    return issue ? new InvalidEventError(issue.path.join('.'), describeIssue(issue)) : new InvalidEventError('', 'invalid Segment message');
  }
  const m = result.data;
  const ts = eventTime(m, options);
  if (ts instanceof InvalidEventError) return ts;

  const event: Record<string, unknown> = { event_id: m.messageId, type: EVENT_TYPES[m.type] };
  const name = m.type === 'track' ? m.event : m.type === 'page' || m.type === 'screen' ? m.name : null;
  if (name) event.name = name;
  event.timestamp = formatTimestamp(ts);
  const anonymousId = m.anonymousId || (m.type === 'alias' ? m.previousId : null);
  if (anonymousId) event.anonymous_id = anonymousId;
  if (m.userId) event.user_id = m.userId;
  // The message's own site wins over its topic's; `default` is left out, as an event without
  // one means it (so messages without sites map to the same events as before).
  const site = m.context?.site || options.site;
  if (site && site !== DEFAULT_SITE) event.site = site;
  event.channel = channelOf(m);
  if (isKeyEvent(m, options.keyEvents)) event.key_event = true;

  const context = m.context;
  const page = pageOf(m);
  if (page) event.page = page;
  const campaign = pick(context?.campaign, CAMPAIGN_FIELDS) ?? (page?.url ? utmOf(page.url) : undefined);
  if (campaign) event.campaign = campaign;
  const userAgent = context?.userAgent;
  const device = compact({
    type: context?.device?.type,
    os: context?.os?.name,
    browser: userAgent ? (options.parseBrowser ?? browserOf)(userAgent) : undefined,
    app_version: context?.app?.version,
  });
  if (device) event.device = device;
  const location = context?.location;
  // Our `geo.country` is an ISO 3166-1 alpha-2 code; a name ("United States", as some
  // sources send) is left out rather than losing the whole event over it.
  const country = location?.country && COUNTRY_CODE.test(location.country) ? location.country.toUpperCase() : undefined;
  const geo = compact({ country, region: location?.region, city: location?.city });
  if (geo) event.geo = geo;
  if (m.properties) event.properties = m.properties;
  return event;
}

/**
 * `timestamp`; else `receivedAt − (sentAt − originalTimestamp)` when all three are known
 * (Segment's correction of a device clock that is off: the time the device took between the
 * event and sending it, counted back from when it was received); else `originalTimestamp`;
 * else `receivedAt` (the message's own, else the one from the options).
 */
function eventTime(m: SegmentMessage, options: SegmentMappingOptions): number | InvalidEventError {
  let receivedAt = m.receivedAt ?? null;
  if (receivedAt === null && options.receivedAt !== undefined) {
    const given = segmentTime.safeParse(options.receivedAt);
    if (!given.success) return new InvalidEventError('receivedAt', `the receive time given is not a time (${options.receivedAt})`);
    receivedAt = given.data;
  }
  let ts: number;
  let field: string;
  if (m.timestamp != null) {
    ts = m.timestamp;
    field = 'timestamp';
  } else if (receivedAt !== null && m.sentAt != null && m.originalTimestamp != null) {
    ts = receivedAt - (m.sentAt - m.originalTimestamp);
    field = 'originalTimestamp';
  } else if (m.originalTimestamp != null) {
    ts = m.originalTimestamp;
    field = 'originalTimestamp';
  } else if (receivedAt !== null) {
    ts = receivedAt;
    field = 'receivedAt';
  } else {
    return new InvalidEventError('timestamp', 'is required: the message has none of timestamp, originalTimestamp and receivedAt');
  }
  if (!(ts >= MIN_EVENT_TIME_MS && ts <= MAX_EVENT_TIME_MS)) {
    return new InvalidEventError(field, `the event time it gives must be within the years 2000–2099`);
  }
  return ts;
}

/** `context.channel` when it is one of ours; else Segment's top-level `channel`; else by call type. */
function channelOf(m: SegmentMessage): Channel {
  const own = m.context?.channel;
  if (own && OWN_CHANNELS.has(own)) return own as Channel;
  const segment = m.channel ? SEGMENT_CHANNELS.get(m.channel) : undefined;
  if (segment) return segment;
  if (m.type === 'page') return 'web';
  if (m.type === 'screen') return 'app';
  return 'server';
}

function isKeyEvent(m: SegmentMessage, keyEvents: SegmentMappingOptions['keyEvents']): boolean {
  if (m.properties?.key_event === true) return true;
  if (m.type !== 'track' || !m.event || !keyEvents) return false;
  return isSet(keyEvents) ? keyEvents.has(m.event) : keyEvents.includes(m.event);
}

function isSet(value: ReadonlySet<string> | readonly string[]): value is ReadonlySet<string> {
  return !Array.isArray(value);
}

/** `context.page`; for a page call, its `properties` fill what `context.page` lacks. */
function pageOf(m: SegmentMessage): Record<string, string> | undefined {
  const fromContext = m.context?.page;
  const fromProperties = m.type === 'page' ? m.properties : null;
  const page: Record<string, string> = {};
  for (const field of PAGE_FIELDS) {
    const value = nonEmpty(fromContext?.[field]) ?? nonEmpty(fromProperties?.[field]);
    if (value !== undefined) page[field] = value;
  }
  return Object.keys(page).length > 0 ? page : undefined;
}

/** The `utm_*` parameters of a URL's query (absolute or relative), decoded as a browser does. */
export function utmOf(url: string): Record<string, string> | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const hash = url.indexOf('#', q);
  const params = new URLSearchParams(url.slice(q + 1, hash < 0 ? undefined : hash));
  const campaign: Record<string, string> = {};
  for (const [parameter, field] of UTM_PARAMETERS) {
    const value = params.get(parameter);
    if (value) campaign[field] = value;
  }
  return Object.keys(campaign).length > 0 ? campaign : undefined;
}

/** The non-empty string values of `fields` in `source`, or undefined when there are none. */
function pick<F extends string>(source: Partial<Record<F, string | null>> | null | undefined, fields: readonly F[]): Record<string, string> | undefined {
  if (!source) return undefined;
  const out: Record<string, string> = {};
  for (const field of fields) {
    const value = nonEmpty(source[field]);
    if (value !== undefined) out[field] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function compact(values: Record<string, string | null | undefined>): Record<string, string> | undefined {
  return pick(values, Object.keys(values));
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
